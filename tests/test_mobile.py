"""The mobile family against the papers' tables: SqueezeNet, MobileNet v1/v2/v3, ShuffleNet v1/v2, EfficientNet.

Counts at non-default options are compared with keras.applications (weights=None, trainable weights) and the
ShuffleNet authors' README; models are built at 32x32 (parameter counts do not depend on the input size).
"""

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import registry
from keras_cnn.models import shufflenet
from keras_cnn.layers import (CeilModeMaxPooling2D, ChannelShuffle, ChannelSplit, DepthwiseAveragePooling2D,
                              DropPath)
from keras_cnn.model import int8_form
from keras_cnn.models.efficientnet import COMPOUND_SCALING
from tests.test_param_counts import trainable_count

NAMES = ["squeezenet1_0", "squeezenet1_1", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small",
         "mobilenet_v3_large", *(f"shufflenet_v1_g{g}" for g in (1, 2, 3, 4, 8)),
         *(f"shufflenet_v2_{w}" for w in ("x0_5", "x1_0", "x1_5", "x2_0")), *(f"efficientnet_b{i}" for i in range(8))]
SMALL = (32, 32, 3)


def shapes(model, names):
    return {name: tuple(model.get_layer(name).output.shape[1:]) for name in names}


def count(name, **kwargs):
    return trainable_count(keras_cnn.build(name, input_shape=SMALL, **kwargs))


def test_issue_names_are_registered():
    assert set(NAMES) <= set(keras_cnn.list_models())


# --- SqueezeNet -------------------------------------------------------------------------------------------------

def test_squeezenet1_0_matches_paper_table_1():
    model = keras_cnn.build("squeezenet1_0")
    assert shapes(model, ["conv1", "pool1", "fire2_concat", "fire4_concat", "pool4", "fire8_concat", "pool8",
                          "fire9_concat", "classifier_conv", "predictions"]) == {
        "conv1": (111, 111, 96), "pool1": (55, 55, 96), "fire2_concat": (55, 55, 128),
        "fire4_concat": (55, 55, 256), "pool4": (27, 27, 256), "fire8_concat": (27, 27, 512),
        "pool8": (13, 13, 512), "fire9_concat": (13, 13, 512), "classifier_conv": (13, 13, 1000),
        "predictions": (1000,)}
    per_module = {name: sum(layer.count_params() for layer in model.layers if layer.name.startswith(f"{name}_"))
                  for name in (f"fire{i}" for i in range(2, 10))}
    # Table 1, "# parameter before pruning" (weights + biases)
    assert model.get_layer("conv1").count_params() == 14_208
    assert list(per_module.values()) == [11_920, 12_432, 45_344, 49_440, 104_880, 111_024, 188_992, 197_184]
    assert model.get_layer("classifier_conv").count_params() == 513_000
    assert model.get_layer("classifier_dropout").rate == 0.5


def test_squeezenet1_1_pools_early():
    model = keras_cnn.build("squeezenet1_1", input_shape=(224, 224, 3), include_top=False)
    assert shapes(model, ["conv1", "pool1", "pool3", "pool5", "fire9_concat"]) == {
        "conv1": (111, 111, 64), "pool1": (55, 55, 64), "pool3": (27, 27, 128), "pool5": (13, 13, 256),
        "fire9_concat": (13, 13, 512)}  # torchvision squeezenet1_1 at 224


def test_squeezenet_bypass_options():
    plain = keras_cnn.build("squeezenet1_0", input_shape=SMALL)
    simple = keras_cnn.build("squeezenet1_0", input_shape=SMALL, bypass="simple")
    complex_ = keras_cnn.build("squeezenet1_0", input_shape=SMALL, bypass="complex")
    assert [layer.name for layer in simple.layers if isinstance(layer, keras.layers.Add)] == [
        "fire3_add", "fire5_add", "fire7_add", "fire9_add"]
    assert simple.count_params() == plain.count_params()
    bypass_convs = [layer.name for layer in complex_.layers if layer.name.endswith("_bypass")]
    assert bypass_convs == ["fire2_bypass", "fire4_bypass", "fire6_bypass", "fire8_bypass"]
    extra = sum(c_in * c_out + c_out for c_in, c_out in ((96, 128), (128, 256), (256, 384), (384, 512)))
    assert complex_.count_params() == plain.count_params() + extra
    with pytest.raises(ValueError, match="bypass must be one of None, 'simple', 'complex'; received 'full'"):
        keras_cnn.build("squeezenet1_0", bypass="full")


def ceil_mode_max_pool(x, k=3, s=2):
    """PyTorch ``MaxPool2d(k, s, ceil_mode=True)`` written out: windows clipped at the bottom/right edge."""
    out_h, out_w = (-(-(n - k) // s) + 1 for n in x.shape[1:3])
    out = np.empty((x.shape[0], out_h, out_w, x.shape[3]), x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            out[:, i, j] = x[:, i * s:i * s + k, j * s:j * s + k].max(axis=(1, 2))
    return out


@pytest.mark.parametrize("height, width", [(27, 27), (54, 55), (8, 7), (2, 3)])
def test_ceil_mode_max_pooling_matches_the_clipped_windows(height, width):
    x = np.random.default_rng(0).normal(size=(2, height, width, 3)).astype("float32") - 5.0  # all negative
    layer = CeilModeMaxPooling2D(3, strides=2)
    np.testing.assert_array_equal(layer(x).numpy(), ceil_mode_max_pool(x))
    assert layer.compute_output_shape((None, height, width, 3)) == (None, *ceil_mode_max_pool(x).shape[1:])
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="2 \\* \\(strides - 1\\) <= pool_size"):
        CeilModeMaxPooling2D(2, strides=3)


@pytest.mark.parametrize("height, width, pool, strides", [(9, 9, 3, 2), (8, 11, 3, 2), (6, 6, 2, 2), (5, 7, 3, 1)])
def test_depthwise_average_pooling_equals_average_pooling(height, width, pool, strides):
    x = np.random.default_rng(0).normal(size=(2, height, width, 5)).astype("float32")
    layer = DepthwiseAveragePooling2D(pool, strides=strides)
    expected = keras.layers.AveragePooling2D(pool, strides=strides)(x).numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert layer.compute_output_shape((None, height, width, 5)) == (None, *expected.shape[1:])
    assert not layer.weights
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert clone.get_config() == layer.get_config()


# --- MobileNet --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, options, expected", [
    ("mobilenet_v1", {"alpha": 0.25}, 470_072),
    ("mobilenet_v1", {"depth_multiplier": 2}, 7_426_120),
    ("mobilenet_v2", {"alpha": 0.35}, 1_677_128),
    ("mobilenet_v2", {"alpha": 1.4}, 6_108_776),
    ("mobilenet_v3_small", {"minimalistic": True}, 2_044_736),
    ("mobilenet_v3_large", {"minimalistic": True}, 3_924_288),
])
def test_mobilenet_options_match_keras_applications(name, options, expected):
    assert count(name, **options) == expected  # keras.applications trainable count with the same option


def test_mobilenet_v1_and_v2_layers():
    v1 = keras_cnn.build("mobilenet_v1", include_top=False)
    assert v1.output_shape == (None, 7, 7, 1024)
    assert v1.get_layer("block13_dwconv").strides == (1, 1)  # Table 1's "s2" on the last dw layer is a typo
    assert v1.get_layer("block1_pwconv_bn").epsilon == 1e-3
    assert v1.get_layer("block1_pwconv_relu6")
    v2 = keras_cnn.build("mobilenet_v2", include_top=False)
    # Table 2: t=1 rows have no expansion convolution; 17 bottlenecks; 1280-channel 7x7 output
    assert "stage1_block1_expand" not in {layer.name for layer in v2.layers}
    assert v2.get_layer("stage2_block1_expand").filters == 96
    assert sum(layer.name.endswith("_project") for layer in v2.layers) == 17
    assert [layer.name for layer in v2.layers if layer.name.endswith("_add")][:2] == [
        "stage2_block2_add", "stage3_block2_add"]
    assert v2.output_shape == (None, 7, 7, 1280)
    with pytest.raises(ValueError, match="alpha \\(width multiplier\\) must be > 0"):
        keras_cnn.build("mobilenet_v1", alpha=0.0)
    with pytest.raises(ValueError, match="depth_multiplier must be >= 1; received 0"):
        keras_cnn.build("mobilenet_v1", depth_multiplier=0)


def test_keras_hard_sigmoid_and_hard_swish_are_the_papers():
    x = np.linspace(-5, 5, 101).astype("float32")
    relu6 = np.clip(x + 3.0, 0.0, 6.0)
    np.testing.assert_allclose(keras.activations.hard_sigmoid(x), relu6 / 6.0, atol=1e-6)
    np.testing.assert_allclose(keras.activations.get("hard_swish")(x), x * relu6 / 6.0, atol=1e-6)


def test_mobilenet_v3_large_matches_table_1():
    model = keras_cnn.build("mobilenet_v3_large")
    layers = {layer.name: layer for layer in model.layers}
    assert model.get_layer("conv1_hard_swish") and model.get_layer("block1_dwconv_relu")
    assert model.get_layer("block7_expand_hard_swish") and model.get_layer("block6_expand_relu")
    se_blocks = sorted(int(name[5:].split("_")[0]) for name in layers if name.endswith("_se_excite"))
    assert se_blocks == [4, 5, 6, 11, 12, 13, 14, 15]
    assert layers["block4_se_reduce"].filters == 24  # make_divisible(72 / 4)
    assert layers["block4_se_expand"].activation is keras.activations.hard_sigmoid
    assert layers["block13_dwconv"].kernel_size == (5, 5)
    assert shapes(model, ["conv_last", "head_fc", "predictions"]) == {
        "conv_last": (7, 7, 960), "head_fc": (1280,), "predictions": (1000,)}
    assert layers["head_fc"].activation is keras.activations.hard_silu
    assert layers["head_fc_dropout"].rate == 0.2
    minimal = keras_cnn.build("mobilenet_v3_large", minimalistic=True, input_shape=SMALL)
    assert not any("se_" in layer.name or "hard_swish" in layer.name for layer in minimal.layers)
    assert {layer.kernel_size for layer in minimal.layers if isinstance(layer, keras.layers.DepthwiseConv2D)} == {
        (3, 3)}
    with pytest.raises(TypeError, match="minimalistic must be True or False"):
        keras_cnn.build("mobilenet_v3_small", minimalistic="yes")


# --- ShuffleNet -------------------------------------------------------------------------------------------------

def shuffle_reference(x, groups):
    """The paper's shuffle on NCHW channels (torchvision): view (g, C/g), transpose, flatten."""
    n, h, w, c = x.shape
    return x.reshape(n, h, w, groups, c // groups).swapaxes(3, 4).reshape(n, h, w, c)


@pytest.mark.parametrize("groups", [2, 3, 8])
def test_channel_shuffle_is_the_papers_permutation(groups):
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 24)).astype("float32")
    layer = ChannelShuffle(groups)
    np.testing.assert_array_equal(layer(x).numpy(), shuffle_reference(x, groups))
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert clone.get_config()["groups"] == groups
    inputs = keras.Input((None, None, 24))
    dynamic = keras.Model(inputs, ChannelShuffle(groups)(inputs))
    np.testing.assert_array_equal(dynamic(x).numpy(), shuffle_reference(x, groups))
    with pytest.raises(ValueError, match="multiple of groups=5"):
        ChannelShuffle(5)(keras.Input((4, 4, 24)))


def test_channel_split_halves_in_order():
    x = np.arange(2 * 2 * 2 * 6, dtype="float32").reshape(2, 2, 2, 6)
    left, right = ChannelSplit(2)(x)
    np.testing.assert_array_equal(left.numpy(), x[..., :3])
    np.testing.assert_array_equal(right.numpy(), x[..., 3:])
    with pytest.raises(ValueError, match="multiple of splits=4"):
        ChannelSplit(4)(keras.Input((4, 4, 6)))


def test_shufflenet_v1_export_form_equals_native_form():
    """Split groups and the shortcut average as a constant depthwise convolution: the int8 export form."""
    native = keras_cnn.build("shufflenet_v1_g3", input_shape=SMALL, classes=5, classifier_activation=None)
    split = keras_cnn.build("shufflenet_v1_g3", input_shape=SMALL, classes=5, classifier_activation=None,
                            grouped_conv="split", shortcut_pool="depthwise")
    assert split.count_params() == native.count_params()  # the constant pooling kernel is not a weight
    assert isinstance(split.get_layer("stage3_block1_shortcut_pool"), DepthwiseAveragePooling2D)
    assert trainable_count(split) == trainable_count(native)
    assert all(layer.groups == 1 for layer in split.layers if isinstance(layer, keras.layers.Conv2D))
    assert split.get_layer("stage3_block2_conv1_g3_bn") and split.get_layer("stage3_block2_conv2_concat")
    assert native.get_layer("stage3_block2_conv1").groups == 3
    assert native.get_layer("stage2_block1_conv1").groups == 1  # §3.3: first pointwise layer not grouped
    for layer in native.layers:  # non-trivial BN statistics, so a wrong channel order would show
        if isinstance(layer, keras.layers.BatchNormalization):
            rng = np.random.default_rng(len(layer.name))
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])
    split = keras_cnn.rebuild(native, grouped_conv="split", shortcut_pool="depthwise")
    images = np.random.default_rng(1).uniform(size=(2, *SMALL)).astype("float32")
    expected = native(images, training=False).numpy()
    np.testing.assert_allclose(split(images, training=False).numpy(), expected, rtol=1e-4, atol=1e-4)
    back = keras_cnn.rebuild(split, grouped_conv="native", shortcut_pool="average")
    np.testing.assert_allclose(back(images, training=False).numpy(), expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="scale=0.5 changes what the weights compute"):
        keras_cnn.rebuild(native, scale=0.5)


@pytest.mark.parametrize("groups, options", [(3, {"scale": 1.5}), (8, {"grouped_conv": "split"}),
                                            (1, {"scale": 0.5}), (2, {"include_top": False}),
                                            (4, {"input_shape": (None, None, 3), "include_top": False})])
def test_shufflenet_v1_int8_form_rebuilds_any_build_with_its_weights(groups, options):
    head = {"classes": 5, "classifier_activation": None} if options.get("include_top", True) else {"pooling": "avg"}
    model = keras_cnn.build(f"shufflenet_v1_g{groups}", **{"input_shape": SMALL, **options}, name="mine", **head)
    for layer in model.layers:  # non-trivial weights everywhere, so a weight left behind would show
        if layer.weights:
            rng = np.random.default_rng(len(layer.name))
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])
    form = int8_form(model)
    assert form is not model and form.name == "mine"
    assert keras_cnn.model_config(form) == {**keras_cnn.model_config(model), **shufflenet.INT8_FORM}
    assert form.count_params() == model.count_params() and form.output_shape == model.output_shape
    assert all(layer.groups == 1 for layer in form.layers if isinstance(layer, keras.layers.Conv2D))
    images = np.random.default_rng(1).uniform(size=(2, *SMALL)).astype("float32")
    np.testing.assert_allclose(form(images).numpy(), model(images).numpy(), rtol=1e-4, atol=1e-4)
    assert int8_form(form) is form  # already in the form
    other = keras_cnn.build("shufflenet_v2_x0_5", input_shape=SMALL)
    assert int8_form(other) is other  # no int8 form registered for the family


@pytest.mark.parametrize("groups, scale, millions", [(3, 0.5, 0.7), (3, 2.0, 5.4), (8, 0.5, 1.0), (8, 1.5, 4.3)])
def test_shufflenet_v1_scale_matches_the_authors_release(groups, scale, millions):
    model = keras_cnn.build(f"shufflenet_v1_g{groups}", input_shape=SMALL, scale=scale)
    # megvii-model/ShuffleNet-Series README (bias-free classifier, rounded to 0.1M)
    assert round((trainable_count(model) - 1000) / 1e6, 1) == millions


def test_shufflenet_v1_table_1_widths_and_errors():
    model = keras_cnn.build("shufflenet_v1_g8", include_top=False)
    assert shapes(model, ["conv1", "pool1", "stage2_block4_relu", "stage3_block8_relu", "stage4_block4_relu"]) == {
        "conv1": (112, 112, 24), "pool1": (56, 56, 24), "stage2_block4_relu": (28, 28, 384),
        "stage3_block8_relu": (14, 14, 768), "stage4_block4_relu": (7, 7, 1536)}
    assert model.get_layer("stage2_block1_conv2").filters == 384 - 24  # concatenated with the pooled input
    with pytest.raises(ValueError, match="scale must be one of 0.5, 1.0, 1.5, 2.0; received 0.75"):
        keras_cnn.build("shufflenet_v1_g3", scale=0.75)
    with pytest.raises(ValueError, match="grouped_conv must be one of 'native', 'split'; received 'loop'"):
        keras_cnn.build("shufflenet_v1_g3", grouped_conv="loop")
    with pytest.raises(ValueError, match="shortcut_pool must be one of 'average', 'depthwise'; received 'max'"):
        keras_cnn.build("shufflenet_v1_g3", shortcut_pool="max")


def test_shufflenet_v2_matches_table_5_and_keeps_half_the_channels():
    model = keras_cnn.build("shufflenet_v2_x1_0", include_top=False)
    assert shapes(model, ["conv1", "pool1", "stage2_block4_shuffle", "stage3_block8_shuffle",
                          "stage4_block4_shuffle", "conv5"]) == {
        "conv1": (112, 112, 24), "pool1": (56, 56, 24), "stage2_block4_shuffle": (28, 28, 116),
        "stage3_block8_shuffle": (14, 14, 232), "stage4_block4_shuffle": (7, 7, 464), "conv5": (7, 7, 1024)}
    # a stride-1 unit passes the first half through; after the 2-group shuffle it sits at the even channels
    unit = keras.Model(model.get_layer("stage2_block1_shuffle").output, model.get_layer("stage2_block2_shuffle").output)
    x = np.random.default_rng(0).normal(size=(1, 28, 28, 116)).astype("float32")
    np.testing.assert_array_equal(unit(x).numpy()[..., 0::2], x[..., :58])


# --- EfficientNet -----------------------------------------------------------------------------------------------

def test_efficientnet_compound_scaling_table():
    b0, b7 = registry.get("efficientnet_b0"), registry.get("efficientnet_b7")
    assert [stage[3:] for stage in b0.spec.stages] == [(16, 1), (24, 2), (40, 2), (80, 3), (112, 3), (192, 4),
                                                       (320, 1)]
    # B7 (width 2.0, depth 3.1): keras.applications / torchvision stage widths and repeats
    assert [stage[3:] for stage in b7.spec.stages] == [(32, 4), (48, 7), (80, 7), (160, 10), (224, 10),
                                                       (384, 13), (640, 4)]
    resolutions = [registry.get(name).default_input[0] for name in COMPOUND_SCALING]
    assert resolutions == [224, 240, 260, 300, 380, 456, 528, 600]
    assert [registry.get(name).options["dropout"] for name in COMPOUND_SCALING] == [
        0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5]


def test_efficientnet_b0_mbconv_se_and_drop_connect():
    model = keras_cnn.build("efficientnet_b0", input_shape=SMALL)
    layers = {layer.name: layer for layer in model.layers}
    assert layers["conv1"].filters == 32 and layers["conv_last"].filters == 1280
    assert layers["stage2_block1_se_reduce"].filters == 4  # a quarter of the block's 16 input channels
    assert layers["stage2_block1_expand"].filters == 96
    assert layers["stage2_block1_se_expand"].activation is keras.activations.sigmoid
    drops = {name: layer.rate for name, layer in layers.items() if isinstance(layer, DropPath)}
    # block i of 16 (from 0) drops with rate 0.2 * i / 16; blocks that change width or stride have no shortcut
    assert drops == pytest.approx({f"stage{row}_block{block}_drop": 0.2 * index / 16 for row, block, index in [
        (2, 2, 2), (3, 2, 4), (4, 2, 6), (4, 3, 7), (5, 2, 9), (5, 3, 10), (6, 2, 12), (6, 3, 13), (6, 4, 14)]})
    assert layers["head_dropout"].rate == 0.2
    plain = keras_cnn.build("efficientnet_b0", input_shape=SMALL, drop_connect_rate=0.0)
    assert not any(isinstance(layer, DropPath) for layer in plain.layers)


# --- MobileNet / EfficientNet: the numerical forms of PyTorch-born checkpoints ------------------------------------

@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0"])
def test_mobile_padding_and_epsilon_options(name):
    """Default: TensorFlow's "same" and epsilon 1e-3 (no padding layers). ``padding="symmetric"`` pads only the
    strided windows (the stem and the stride-2 depthwise convolutions), ``k // 2`` on every side as PyTorch does;
    ``bn_epsilon`` reaches every BatchNormalization. Neither changes the parameters."""
    default = keras_cnn.build(name, input_shape=(64, 64, 3))
    norms = [layer for layer in default.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert {layer.epsilon for layer in norms} == {1e-3}
    assert not any(layer.name.endswith("_pad") for layer in default.layers)
    ported = keras_cnn.build(name, input_shape=(64, 64, 3), padding="symmetric", bn_epsilon=1e-5)
    assert {layer.epsilon for layer in ported.layers if isinstance(layer, keras.layers.BatchNormalization)} == {1e-5}
    pads = {layer.name[:-len("_pad")]: layer.padding for layer in ported.layers if layer.name.endswith("_pad")}
    strided = {layer.name: layer.kernel_size[0] // 2 for layer in ported.layers
               if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and layer.strides == (2, 2)}
    assert pads == {conv: ((k, k), (k, k)) for conv, k in strided.items()} and "conv1" in pads
    assert ported.count_params() == default.count_params()
    assert ported.output_shape == default.output_shape


@pytest.mark.parametrize("options, error, match", [
    ({"padding": "valid"}, ValueError, "padding must be one of 'same', 'symmetric'; received 'valid'"),
    ({"bn_epsilon": 0.0}, ValueError, "bn_epsilon must be a finite number > 0"),
    ({"bn_epsilon": float("nan")}, ValueError, "bn_epsilon must be a finite number > 0"),
    ({"bn_epsilon": "1e-5"}, TypeError, "bn_epsilon must be a number"),
])
@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0"])
def test_mobile_padding_and_epsilon_errors_name_the_argument(name, options, error, match):
    with pytest.raises(error, match=match):
        keras_cnn.build(name, input_shape=SMALL, **options)
