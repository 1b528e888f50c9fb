"""The residual family against the seed (../shared/seeds/003 §5-7) and the papers: depths, shortcut rows,
pre-activation wiring, ResNeXt (C, d), SE parameters, stochastic depth."""

import dataclasses
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_cnn
from keras_cnn import registry
from keras_cnn.layers import StochasticDepth, ZeroPadChannels
from keras_cnn.models import resnet
from tests.spec_variants import build_variant

NAMES = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
         "resnet18_v2", "resnet34_v2", "resnet50_v2", "resnet101_v2", "resnet152_v2", "resnet200_v2",
         "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202", "resnet164_v2", "resnet1001_v2",
         "resnext50_32x4d", "resnext101_32x4d", "resnext101_32x8d", "resnext101_64x4d",
         "se_resnet50", "se_resnet101", "se_resnet152", "se_resnext50_32x4d", "se_resnext101_32x4d", "senet154"]


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def source(model, name):
    """Names of the layers feeding layer ``name``."""
    inputs = model.get_layer(name).input
    return sorted(t._keras_history.operation.name for t in (inputs if isinstance(inputs, list) else [inputs]))


def test_issue_names_are_registered():
    assert set(NAMES) <= set(keras_cnn.list_models("*res*") + keras_cnn.list_models("senet*"))


@pytest.mark.parametrize("name", NAMES)
def test_weight_layers_add_up_to_the_depth_in_the_name(name):
    """Convolutions on the residual path plus the classifier: 18 = 8x2+1+1, 50 = 16x3+1+1, 164 = 54x3+1+1,
    SENet-154 = 50x3 + its three stem convolutions + 1 (no build: the table row alone)."""
    spec = registry.get(name).spec
    convs_per_block = 2 if spec.block == "basic" else 3
    depth = convs_per_block * sum(spec.depths) + len(resnet.STEMS[spec.stem]["convs"]) + 1
    assert re.match(r"(se_)?(resnet|resnext|senet)(\d+)", name).group(3) == str(depth)


def test_resnet50_stages_follow_table_1():
    model = keras_cnn.build("resnet50", include_top=False)
    shapes = {name: tuple(model.get_layer(name).output.shape[1:]) for name in
              ["stem_conv_relu", "stem_pool", "stage1_block3_out", "stage2_block4_out", "stage3_block6_out",
               "stage4_block3_out"]}
    assert shapes == {"stem_conv_relu": (112, 112, 64), "stem_pool": (56, 56, 64),
                      "stage1_block3_out": (56, 56, 256), "stage2_block4_out": (28, 28, 512),
                      "stage3_block6_out": (14, 14, 1024), "stage4_block3_out": (7, 7, 2048)}
    # torchvision ("v1.5") strides the 3x3, padded on every side as PyTorch does; no convolution has a bias
    assert model.get_layer("stage2_block1_conv2").strides == (2, 2)
    assert model.get_layer("stage2_block1_conv1").strides == (1, 1)
    assert isinstance(model.get_layer("stage2_block1_conv2_pad"), keras.layers.ZeroPadding2D)
    assert not any(layer.use_bias for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


@pytest.mark.parametrize("shortcut, expected", [
    ("A", 21_797_672 - 173_824),  # no projection: 1x1 convs + BN at the three stage transitions removed
    ("B", 21_797_672),  # torchvision resnet34
    ("C", 21_797_672 - 173_824 + 1_092_992),  # a 1x1 projection + BN on each of the 16 shortcuts
])
def test_resnet34_shortcut_rows_of_table_3(shortcut, expected):
    model = keras_cnn.build("resnet34", shortcut=shortcut, input_shape=(32, 32, 3))
    assert trainable_count(model) == expected
    projections = [layer.name for layer in model.layers if layer.name.endswith("_shortcut")]
    assert len(projections) == {"A": 0, "B": 3, "C": 16}[shortcut]


def test_option_a_subsamples_and_zero_pads_the_identity():
    model = keras_cnn.build("resnet20", include_top=False, input_shape=(32, 32, 3))
    assert not any(isinstance(layer, keras.layers.Conv2D) and "shortcut" in layer.name for layer in model.layers)
    probe = keras.Model(model.input, [model.get_layer("stage1_block3_out").output,
                                      model.get_layer("stage2_block1_shortcut_pad").output])
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    before, shortcut = (t.numpy() for t in probe(images))
    assert shortcut.shape == (2, 16, 16, 32)
    np.testing.assert_array_equal(shortcut[..., :16], before[:, ::2, ::2, :])
    np.testing.assert_array_equal(shortcut[..., 16:], 0.0)


def test_cifar_resnet_follows_section_4_2():
    model = keras_cnn.build("resnet20", include_top=False, input_shape=(32, 32, 3))
    assert model.get_layer("stem_conv").kernel.shape == (3, 3, 3, 16)
    assert [tuple(model.get_layer(f"stage{s}_block3_out").output.shape[1:]) for s in (1, 2, 3)] == [
        (32, 32, 16), (16, 16, 32), (8, 8, 64)]
    assert registry.get("resnet20").spec.shortcut == "A"


def test_preactivation_unit_wiring():
    """He et al. 2016b: BN-ReLU before each convolution, nothing after the addition, the first activation right
    after conv1, projections fed by the pre-activation, one extra BN-ReLU after the last unit."""
    model = keras_cnn.build("resnet50_v2", include_top=False, input_shape=(32, 32, 3))
    names = {layer.name for layer in model.layers}
    assert not any(name.endswith("_out") for name in names)
    assert "stage1_block1_preact_bn" not in names and source(model, "stage1_block1_conv1") == ["stem_pool"]
    assert source(model, "stage1_block1_shortcut") == ["stem_pool"]
    assert source(model, "stage2_block1_shortcut") == ["stage2_block1_preact_relu"]
    assert source(model, "stage2_block1_conv1") == ["stage2_block1_preact_relu"]
    assert source(model, "stage2_block1_preact_bn") == ["stage1_block3_add"]
    assert source(model, "stage2_block2_add") == ["stage2_block1_add", "stage2_block2_conv3"]  # clean identity
    assert "stage2_block2_conv3_bn" not in names
    assert [layer.name for layer in model.layers[-2:]] == ["post_bn", "post_relu"]


def test_tf_slim_preactivation_form():
    """keras.applications' ResNet*V2 (TF-slim's resnet_v2): the stem convolution (with a bias, no BN-ReLU) feeds
    the pooling and the first unit pre-activates; stages 1-3 halve the map in their last unit, whose shortcut is
    the subsampled identity; the convolutions no BN follows have biases. Same parameters as ResNet50V2."""
    model = keras_cnn.build("resnet50_v2", include_top=False, input_shape=(64, 64, 3), downsample="last",
                            stem_norm=False, conv_bias=True)
    names = {layer.name for layer in model.layers}
    assert "stem_conv_bn" not in names and model.get_layer("stem_conv").use_bias
    assert source(model, "stem_pool_pad") == ["stem_conv"]
    assert source(model, "stage1_block1_preact_bn") == ["stem_pool"]
    sizes = {f"stage{s}_block{b}": model.get_layer(f"stage{s}_block{b}_add").output.shape[1]
             for s, b in ((1, 1), (1, 3), (2, 1), (2, 4), (3, 6), (4, 3))}
    assert sizes == {"stage1_block1": 16, "stage1_block3": 8, "stage2_block1": 8, "stage2_block4": 4,
                     "stage3_block6": 2, "stage4_block3": 2}
    assert "stage1_block3_shortcut" not in names
    assert source(model, "stage1_block3_shortcut_pool") == ["stage1_block2_add"]
    assert [model.get_layer(f"stage1_block3_conv{i}").strides for i in (1, 2)] == [(1, 1), (2, 2)]
    assert model.get_layer("stage2_block1_shortcut").strides == (1, 1)
    assert model.get_layer("stage2_block1_shortcut").use_bias and model.get_layer("stage2_block1_conv3").use_bias
    assert not model.get_layer("stage2_block1_conv2").use_bias
    full = keras_cnn.build("resnet50_v2", downsample="last", stem_norm=False, conv_bias=True)
    assert full.count_params() == 25_613_800  # keras.applications.ResNet50V2(weights=None).count_params()


def test_cifar_preactivation_strides_the_first_1x1():
    spec = registry.get("resnet164_v2").spec
    assert spec.preact and spec.stride_in_1x1


def _strides(model):
    return [model.get_layer(f"stage2_block1_conv{i}").strides for i in (1, 2)]


@pytest.mark.parametrize("name, stride_in_1x1, expected", [
    ("resnet50", None, [(1, 1), (2, 2)]),  # the row: torchvision's v1.5
    ("resnet50", True, [(2, 2), (1, 1)]),  # the Caffe/MSRA model and keras.applications ResNet50
    ("se_resnet50", None, [(2, 2), (1, 1)]),  # the row: the Caffe SE-ResNet
    ("se_resnet50", False, [(1, 1), (2, 2)]),
])
def test_ablation_options_default_to_the_row_and_are_recorded(name, stride_in_1x1, expected):
    """CONTRIBUTING.md: an ablation option defaults to None, the spec row's value; passing it builds the
    paper's ablation of that row, and the registered row stays as it is."""
    entry = registry.get(name)
    assert (entry.options["shortcut"], entry.options["stride_in_1x1"]) == (None, None)
    model = keras_cnn.build(name, include_top=False, input_shape=(32, 32, 3), stride_in_1x1=stride_in_1x1)
    assert _strides(model) == expected
    config = keras_cnn.model_config(model)
    assert (config["shortcut"], config["stride_in_1x1"]) == (None, stride_in_1x1)
    assert registry.get(name).spec is entry.spec and entry.spec.stride_in_1x1 == (name == "se_resnet50")


@pytest.mark.parametrize("cardinality, base_width", [(1, 64), (2, 40), (4, 24), (8, 14), (32, 4)])
def test_resnext50_c_d_table_keeps_the_complexity(cardinality, base_width):
    """Seed §6.2.2 table (Xie et al. Table 2): C x d with about ResNet-50's parameters (paper: 25.5M for
    ResNet-50, 25.0M for 32x4d); the grouped 3x3 is C*d wide in the first stage (64, 80, 96, 112, 128) and
    doubles with each stage."""
    model = build_variant("resnet50", {"cardinality": cardinality, "base_width": base_width}, include_top=False,
                          input_shape=(32, 32, 3))
    conv2 = model.get_layer("stage1_block1_conv2")
    assert (conv2.groups, conv2.filters) == (cardinality, cardinality * base_width)
    assert model.get_layer("stage4_block1_conv2").filters == 8 * cardinality * base_width
    assert abs(trainable_count(model) / 23_508_032 - 1) < 0.03  # ResNet-50 without its classifier


@pytest.mark.parametrize("name, cardinality, base_width", [
    ("resnext50_32x4d", 32, 4), ("resnext101_32x4d", 32, 4), ("resnext101_32x8d", 32, 8),
    ("resnext101_64x4d", 64, 4), ("se_resnext50_32x4d", 32, 4), ("senet154", 64, 4)])
def test_resnext_names_are_c_x_d(name, cardinality, base_width):
    spec = registry.get(name).spec
    assert (spec.cardinality, spec.base_width) == (cardinality, base_width)


def test_se_block_adds_the_seed_formula_parameters():
    """Seed §7.1.3: the SE blocks add 2/r * sum_s C_s^2 weights (plus their biases): about 10% of ResNet-50."""
    model = keras_cnn.build("se_resnet50", include_top=False, input_shape=(32, 32, 3))
    se_layers = [layer for layer in model.layers if layer.name.endswith(("_se_reduce", "_se_expand"))]
    blocks = [(256, 3), (512, 4), (1024, 6), (2048, 3)]
    assert sum(layer.kernel.numpy().size for layer in se_layers) == sum(n * 2 * c * c // 16 for c, n in blocks)
    assert sum(layer.count_params() for layer in se_layers) == 28_088_024 - 25_557_032
    assert source(model, "stage2_block1_add") == ["stage2_block1_se_excite", "stage2_block1_shortcut_bn"]
    assert model.get_layer("stage2_block1_conv1").strides == (2, 2)  # the Caffe SE-ResNets stride the 1x1
    assert isinstance(model.get_layer("stem_pool"), keras_cnn.layers.CeilModeMaxPooling2D)


def test_senet154_stem_shortcuts_and_head():
    model = keras_cnn.build("senet154", input_shape=(32, 32, 3), classes=3)
    assert [model.get_layer(f"stem_conv{i}").filters for i in (1, 2, 3)] == [64, 64, 128]
    assert model.get_layer("stage1_block1_shortcut").kernel_size == (1, 1)
    assert model.get_layer("stage2_block1_shortcut").kernel_size == (3, 3)
    assert [model.get_layer(f"stage1_block1_conv{i}").filters for i in (1, 2, 3)] == [128, 256, 256]
    assert model.get_layer("head_dropout").rate == 0.2


@pytest.mark.parametrize("changes, error, match", [
    ({"shortcut": "D"}, ValueError, "shortcut must be one of 'A', 'B', 'C'; received 'D'"),
    ({"cardinality": 32}, ValueError, "basic-block ResNets have no grouped convolution"),
    ({"cardinality": 0}, ValueError, "cardinality must be >= 1"),
    ({"cardinality": 32.0}, TypeError, "cardinality must be an integer; received 32.0"),
    ({"se_reduction": 32}, ValueError, "se_reduction must be at most 16"),
    ({"preact": 1}, TypeError, "preact must be True or False"),
])
def test_spec_row_errors_name_the_field(changes, error, match):
    with pytest.raises(error, match=match):
        dataclasses.replace(registry.get("resnet20").spec, **changes)


@pytest.mark.parametrize("options, error, match", [
    ({"drop_path_rate": 1.0}, ValueError, r"drop_path_rate must be in \[0, 1\); received 1.0"),
    ({"drop_path_mode": "row"}, ValueError, "drop_path_mode must be one of 'batch', 'sample'"),
    ({"zero_init_last": 1}, TypeError, "zero_init_last must be True or False"),
    ({"shortcut": "D"}, ValueError, "shortcut must be one of None, 'A', 'B', 'C'; received 'D'"),
    ({"stride_in_1x1": 1}, TypeError, r"stride_in_1x1 must be True or False; received 1 \(int\)"),
    ({"stride_in_1x1": True}, ValueError, "stride_in_1x1 applies only to bottleneck ResNets.*received True"),
    ({"preact": True}, TypeError, "Unknown option.*'preact'.*its options are: conv_bias, downsample, "
                                  "drop_path_mode, drop_path_rate, dropout, shortcut, stem_norm, stride_in_1x1, "
                                  "zero_init_last"),
    ({"downsample": "middle"}, ValueError, "downsample must be one of 'first', 'last'; received 'middle'"),
    ({"stem_norm": 0}, TypeError, r"stem_norm must be True or False; received 0 \(int\)"),
    ({"stem_norm": False}, ValueError, "stem_norm applies only to pre-activation.*leave it True; received False"),
    ({"conv_bias": True}, ValueError, "conv_bias applies only to pre-activation.*leave it False; received True"),
])
def test_option_errors_name_the_argument(options, error, match):
    with pytest.raises(error, match=match):
        keras_cnn.build("resnet20", **options)


# Stochastic depth (Huang et al. 2016; seed §6.3)


def survival(model):
    return [layer.survival_probability for layer in model.layers if isinstance(layer, StochasticDepth)]


def test_survival_probability_decays_linearly():
    model = keras_cnn.build("resnet20", drop_path_rate=0.5, classes=3)
    p = survival(model)
    np.testing.assert_allclose(p, [1 - l / 9 * 0.5 for l in range(1, 10)])  # p_l = 1 - (l / L)(1 - p_L)
    assert sum(p) == pytest.approx(((1 + 0.5) * 9 - 0.5) / 2)  # expected depth, seed §6.3.1 item 4
    assert model.get_layer("stage1_block1_add").layer.name == "stage1_block1_residual"
    sample = keras_cnn.build("resnet20", drop_path_rate=0.5, drop_path_mode="sample", classes=3)
    rates = [layer.rate for layer in sample.layers if isinstance(layer, keras_cnn.layers.DropPath)]
    np.testing.assert_allclose(rates, [l / 9 * 0.5 for l in range(1, 10)])


def _weighted_layers(model):
    """Layers with weights by name, looking inside the stochastic-depth branches."""
    found = {}
    for layer in model.layers:
        inner = layer.layer.layers if isinstance(layer, StochasticDepth) else [layer]
        found.update({sub.name: sub for sub in inner if sub.weights})
    return found


def test_inference_is_deterministic_and_scales_each_branch_by_its_survival_probability():
    keras.utils.set_random_seed(0)
    stochastic = keras_cnn.build("resnet20", drop_path_rate=0.5, classes=3, input_shape=(32, 32, 3))
    plain = keras_cnn.build("resnet20", classes=3, input_shape=(32, 32, 3))
    source_layers = _weighted_layers(stochastic)
    for name, layer in _weighted_layers(plain).items():
        layer.set_weights([w.numpy() for w in source_layers[name].weights])
    # a v1 branch ends in BN, so p_l * F(x) is F with the last BN's gamma and beta scaled by p_l
    for block, p in zip([n[:-4] for n in _block_names(stochastic)], survival(stochastic)):
        bn = plain.get_layer(f"{block}_conv2_bn")
        gamma, beta, mean, var = bn.get_weights()
        bn.set_weights([gamma * p, beta * p, mean, var])
    images = np.random.default_rng(1).uniform(size=(4, 32, 32, 3)).astype("float32")
    first = stochastic.predict(images, verbose=0)
    np.testing.assert_array_equal(first, stochastic.predict(images, verbose=0))
    np.testing.assert_allclose(first, plain.predict(images, verbose=0), atol=1e-5)


def _block_names(model):
    return [layer.name for layer in model.layers if isinstance(layer, StochasticDepth)]


class _CountingBranch(keras.layers.Layer):
    """A branch ``2x`` that counts how often it really runs."""

    def build(self, input_shape):
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")

    def call(self, x):
        self.calls.assign_add(1.0)
        return 2.0 * x


def test_batch_mode_drops_at_the_configured_rate_and_skips_the_dropped_computation():
    layer = StochasticDepth(_CountingBranch(), survival_probability=0.7, seed=3)
    shortcut, x = np.ones((2, 1), "float32"), np.ones((2, 1), "float32")
    np.testing.assert_allclose(layer([shortcut, x], training=False), 1.0 + 0.7 * 2.0)  # the expectation
    step = tf.function(lambda: layer([shortcut, x], training=True))
    outputs = np.array([step().numpy() for _ in range(2000)])
    assert set(np.unique(outputs)) == {1.0, 3.0}  # shortcut alone, or shortcut + branch
    assert np.all(outputs.min(axis=1) == outputs.max(axis=1))  # the whole mini-batch shares the decision
    kept = int((outputs[:, 0, 0] == 3.0).sum())
    assert abs(kept / 2000 - 0.7) < 4 * np.sqrt(0.7 * 0.3 / 2000)
    assert layer.layer.calls.numpy() == kept + 1  # never run when dropped (+1: the inference call)


def test_a_dropped_block_receives_no_update():
    keras.utils.set_random_seed(1)
    model = keras_cnn.build("resnet20", drop_path_rate=0.5, classes=3, input_shape=(32, 32, 3))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    images = np.random.default_rng(2).uniform(size=(4, 32, 32, 3)).astype("float32")
    branches = [layer.layer for layer in model.layers if isinstance(layer, StochasticDepth)]
    dropped = kept = 0
    for _ in range(2):
        before = [[w.numpy().copy() for w in b.trainable_weights] for b in branches]
        model.train_on_batch(images, np.arange(4) % 3)
        for branch, old in zip(branches, before):
            changed = [not np.array_equal(w.numpy(), o) for w, o in zip(branch.trainable_weights, old)]
            assert all(changed) or not any(changed), branch.name  # a branch is run whole or not at all
            kept, dropped = kept + all(changed), dropped + (not any(changed))
    assert dropped and kept


def test_stochastic_depth_model_reloads_in_safe_mode(tmp_path):
    model = keras_cnn.build("resnet20", drop_path_rate=0.3, classes=3)
    path = tmp_path / "sd.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)
    assert survival(reloaded) == survival(model)


def test_residual_layers_round_trip_through_config():
    pad = ZeroPadChannels(3, name="pad")
    assert ZeroPadChannels.from_config(pad.get_config()).padding == 3
    np.testing.assert_array_equal(pad(np.ones((1, 2, 2, 2), "float32")).numpy()[..., 2:], 0.0)
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])
    layer = StochasticDepth(inner, survival_probability=0.25, seed=7, name="sd")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert (clone.survival_probability, clone.seed, clone.layer.layers[0].units) == (0.25, 7, 4)
    with pytest.raises(ValueError, match="survival_probability must be <= 1.0"):
        StochasticDepth(inner, survival_probability=1.5)



def _shortcuts_and_sums(model):
    """(shortcut input, addition output) of every residual unit on two random images, in inference mode."""
    adds = [layer for layer in model.layers if re.fullmatch(r"stage\d+_block\d+_add", layer.name)]
    probe = keras.Model(model.inputs, [tensor for add in adds for tensor in (add.input[0], add.output)])
    outputs = probe(np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)), training=False)
    return list(zip(outputs[::2], outputs[1::2]))


@pytest.mark.parametrize("name", ["resnet20", "resnet18_v2", "resnet50"])
def test_zero_init_last_starts_every_unit_as_the_identity(name):
    """Each unit's addition passes its shortcut through unchanged when the branch's last BN gamma (v1) or last
    kernel (v2) starts at zero; with the default initialisation no unit does."""
    pairs = _shortcuts_and_sums(keras_cnn.build(name, input_shape=(32, 32, 3), classes=3, zero_init_last=True))
    assert len(pairs) == sum(registry.get(name).spec.depths)
    for shortcut, added in pairs:
        np.testing.assert_array_equal(added, shortcut)
    default = _shortcuts_and_sums(keras_cnn.build(name, input_shape=(32, 32, 3), classes=3))
    assert not any(np.array_equal(added, shortcut) for shortcut, added in default)
