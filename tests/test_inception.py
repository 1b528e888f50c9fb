"""The Inception family and Xception against the seed's tables (../shared/seeds/003 §4.1-4.5, 001) and the papers.

Tests that reuse a model built by the harness (``small_model``) share its xdist group, so each worker builds it once.
"""

import dataclasses

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn.layers import CeilModeMaxPooling2D, LocalResponseNormalization
from keras_cnn.layers.inception_blocks import (AdaptiveAveragePooling2D, ConvBN, Pool, ScaledResidual, adaptive_windows,
                                               inception_module)
from keras_cnn.models.inception import (INCEPTION_V3, V3_STEM_CHANNELS, aux_compile_kwargs, inference_model,
                                       module_channels)
from tests.conftest import SMALL_CLASSES, random_images, small_model
from tests.counts.inception import (INCEPTION_V2_CORRECTIONS, INCEPTION_V2_SEED_TABLE, INCEPTION_V2_SEED_TOTAL,
                                    INCEPTION_V2_WEIGHTS, VARIANTS)
from tests.spec_variants import build_variant
from tests.test_param_counts import trainable_count

NAMES = ["googlenet", "inception_v2", "inception_v3", "se_inception_v3", "inception_v4", "inception_resnet_v1",
         "inception_resnet_v2", "xception"]


def grouped(name, *args):
    return pytest.param(name, *args, id=name, marks=pytest.mark.xdist_group(name))


def shapes(model, names):
    return {name: tuple(model.get_layer(name).output.shape[1:]) for name in names}


def kernel_count(model, prefix):
    return sum(int(np.prod(layer.kernel.shape)) for layer in model.layers
               if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and layer.name.startswith(prefix))


def test_issue_names_are_registered():
    assert set(NAMES) <= set(keras_cnn.list_models())


# GoogLeNet (seed 003 §4.1, 001; Szegedy et al. 2015 Table 1)

@pytest.mark.xdist_group("googlenet")
def test_googlenet_matches_table_1():
    model = keras_cnn.build("googlenet")
    assert shapes(model, ["conv1_7x7_s2", "pool1_3x3_s2", "conv2_3x3", "pool2_3x3_s2", "inception_3a",
                          "inception_3b", "pool3_3x3_s2", "inception_4a", "inception_4b", "inception_4c",
                          "inception_4d", "inception_4e", "pool4_3x3_s2", "inception_5a", "inception_5b",
                          "avg_pool", "predictions"]) == {
        "conv1_7x7_s2": (112, 112, 64), "pool1_3x3_s2": (56, 56, 64), "conv2_3x3": (56, 56, 192),
        "pool2_3x3_s2": (28, 28, 192), "inception_3a": (28, 28, 256), "inception_3b": (28, 28, 480),
        "pool3_3x3_s2": (14, 14, 480), "inception_4a": (14, 14, 512), "inception_4b": (14, 14, 512),
        "inception_4c": (14, 14, 512), "inception_4d": (14, 14, 528), "inception_4e": (14, 14, 832),
        "pool4_3x3_s2": (7, 7, 832), "inception_5a": (7, 7, 832), "inception_5b": (7, 7, 1024),
        "avg_pool": (1024,), "predictions": (1000,)}
    assert model.get_layer("inception_3a_b3_2_5x5").kernel.shape == (5, 5, 16, 32)
    assert model.get_layer("head_dropout").rate == 0.4
    lrn = model.get_layer("pool1_norm1")
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4 / 5, 0.75, 1.0)
    assert len(model.outputs) == 1


@pytest.mark.xdist_group("googlenet")
def test_googlenet_auxiliary_classifiers_at_full_size():
    model = keras_cnn.build("googlenet", aux_logits=True)
    assert [t.shape[1:] for t in model.outputs] == [(1000,)] * 3
    assert shapes(model, ["aux1_avgpool", "aux1_conv", "aux1_fc", "aux2_avgpool", "aux2_conv"]) == {
        "aux1_avgpool": (4, 4, 512), "aux1_conv": (4, 4, 128), "aux1_fc": (1024,), "aux2_avgpool": (4, 4, 528),
        "aux2_conv": (4, 4, 128)}
    assert model.get_layer("aux1_dropout").rate == 0.7
    # paper §5: 1x1 conv 128, FC 1024 on the 4x4x128 map, classifier; after 4a (512 ch) and 4d (528 ch)
    heads = sum(c * 128 + 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000 for c in (512, 528))
    assert trainable_count(model) == 6_998_552 + heads
    loss = aux_compile_kwargs(model)
    assert loss["loss_weights"] == {"predictions": 1.0, "aux1_predictions": 0.3, "aux2_predictions": 0.3}


def test_googlenet_batch_norm_variant_layers():
    model = keras_cnn.build("googlenet", batch_norm=True, kernel_5x5=3, include_top=False, input_shape=(32, 32, 3))
    assert not any(isinstance(layer, LocalResponseNormalization) for layer in model.layers)
    assert model.get_layer("inception_3a_b3_2_3x3_bn").epsilon == 1e-3
    assert model.get_layer("inception_3a_b3_2_3x3").use_bias is False


def test_googlenet_torchvision_form_pads_and_pools_as_pytorch():
    """torchvision's GoogLeNet: 7x7/2 stem padded 3 on every side, stride-2 max pools in ceil mode (no padding),
    2x2/2 before 5a, auxiliary heads pooled adaptively to 4x4. At 72 the 9x9 map pools to 4x4 (ceil mode), where
    "same" gives 5x5."""
    model = keras_cnn.build("googlenet", batch_norm=True, kernel_5x5=3, pool4_size=2, padding="symmetric",
                            aux_pooling="adaptive", aux_logits=True, input_shape=(72, 72, 3), classes=SMALL_CLASSES)
    assert model.get_layer("conv1_7x7_s2_pad").padding == ((3, 3), (3, 3))
    assert shapes(model, ["conv1_7x7_s2", "pool2_3x3_s2", "pool3_3x3_s2", "pool4_2x2_s2", "aux1_avgpool"]) == {
        "conv1_7x7_s2": (36, 36, 64), "pool2_3x3_s2": (9, 9, 192), "pool3_3x3_s2": (4, 4, 480),
        "pool4_2x2_s2": (2, 2, 832), "aux1_avgpool": (4, 4, 512)}
    assert isinstance(model.get_layer("pool3_3x3_s2"), CeilModeMaxPooling2D)
    assert isinstance(model.get_layer("aux2_avgpool"), AdaptiveAveragePooling2D)
    assert trainable_count(keras_cnn.build("googlenet", batch_norm=True, kernel_5x5=3, pool4_size=2,
                                           padding="symmetric")) == 6_624_904  # torchvision's num_params
    for option, bad, message in (("pool4_size", 4, "pool4_size must be one of 3, 2"),
                                 ("padding", "valid", "padding must be one of 'same', 'symmetric'"),
                                 ("aux_pooling", "max", "aux_pooling must be one of 'window', 'adaptive'")):
        with pytest.raises(ValueError, match=message):
            keras_cnn.build("googlenet", **{option: bad})


def test_adaptive_average_pooling_matches_pytorchs_windows():
    assert adaptive_windows(14, 4) == [(0, 4), (3, 7), (7, 11), (10, 14)]  # torchvision's aux input at 224
    assert adaptive_windows(3, 4) == [(0, 1), (0, 2), (1, 3), (2, 3)]  # a map smaller than the output
    x = np.arange(2 * 14 * 14 * 3, dtype="float32").reshape(2, 14, 14, 3)
    layer = AdaptiveAveragePooling2D(4)
    expected = np.stack([np.stack([x[:, r0:r1, c0:c1].mean(axis=(1, 2)) for c0, c1 in adaptive_windows(14, 4)],
                                  axis=1) for r0, r1 in adaptive_windows(14, 4)], axis=1)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-6)
    assert AdaptiveAveragePooling2D.from_config(layer.get_config()).output_size == 4
    with pytest.raises(TypeError, match="output_size must be an integer"):
        AdaptiveAveragePooling2D(4.0)


def test_count_include_pad_averages_over_the_whole_window():
    """PyTorch's F.avg_pool2d(x, 3, 1, padding=1) divides by 9 at the border too (torchvision's and timm's
    Inception-v3); TensorFlow's "same" pooling divides by the cells inside the map."""
    inputs = keras.Input((4, 4, 1))
    conv = ConvBN()
    counted = inception_module(inputs, ((Pool("avg"),),), name="m", conv=conv, count_include_pad=True)
    plain = inception_module(inputs, ((Pool("avg"),),), name="n", conv=conv)
    ones = np.ones((1, 4, 4, 1), "float32")
    counted, plain = (np.asarray(keras.Model(inputs, out)(ones))[0, :, :, 0] for out in (counted, plain))
    assert counted[0, 0] == pytest.approx(4 / 9) and counted[0, 1] == pytest.approx(6 / 9) and counted[1, 1] == 1
    np.testing.assert_allclose(plain, 1.0)
    model = keras_cnn.build("inception_v3", count_include_pad=True, include_top=False, input_shape=(75, 75, 3))
    assert model.get_layer("mixed_7c_b4_1_avgpool_pad").padding == ((1, 1), (1, 1))
    with pytest.raises(TypeError, match="count_include_pad must be True or False"):
        keras_cnn.build("inception_v3", count_include_pad=1)


def _train_one_epoch(model, **compile_args):
    """One ``fit`` epoch on 16 random images with the auxiliary losses (eager: the same loss path, without
    minutes of graph tracing on CPU)."""
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (16, *model.input_shape[1:])).astype("float32")
    labels = np.arange(16) % SMALL_CLASSES
    model.compile(optimizer=keras.optimizers.SGD(0.01), **aux_compile_kwargs(model), **compile_args)
    history = model.fit(images, (labels,) * len(model.outputs), epochs=1, batch_size=8, verbose=0).history
    return images, {name: values[0] for name, values in history.items()}


def _check_weighted_loss(history, weights):
    assert all(np.isfinite(v) for v in history.values())
    weighted = sum(w * history[f"{name}_loss"] for name, w in weights.items())
    np.testing.assert_allclose(history["loss"], weighted, rtol=1e-4)


def _check_inference_model(model, images):
    deployed = inference_model(model)
    assert len(deployed.outputs) == 1 and deployed.output_shape == (None, SMALL_CLASSES)
    assert not any(layer.name.startswith("aux") for layer in deployed.layers)
    trained = {id(w) for w in model.weights}
    assert all(id(w) in trained for w in deployed.weights)  # shared, not copied
    main = model(images, training=False)[0]
    np.testing.assert_allclose(deployed(images, training=False), main, atol=1e-6)
    return deployed


@pytest.mark.xdist_group("googlenet")
def test_googlenet_trains_with_auxiliary_losses_and_strips_them(tmp_path):
    model = keras_cnn.build("googlenet", aux_logits=True, input_shape=(32, 32, 3), classes=SMALL_CLASSES)
    assert [t._keras_history.operation.name for t in model.outputs] == [
        "predictions", "aux1_predictions", "aux2_predictions"]
    images, history = _train_one_epoch(model, run_eagerly=True)
    _check_weighted_loss(history, {"predictions": 1.0, "aux1_predictions": 0.3, "aux2_predictions": 0.3})
    deployed = _check_inference_model(model, images)
    deployed.save(tmp_path / "googlenet.keras")
    reloaded = keras.saving.load_model(tmp_path / "googlenet.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded(images), deployed(images), atol=1e-6)


@pytest.mark.xdist_group("inception_v3")
def test_inception_v3_trains_with_auxiliary_loss_and_strips_it():
    model = keras_cnn.build("inception_v3", aux_logits=True, input_shape=(75, 75, 3), classes=SMALL_CLASSES)
    assert model.get_layer("aux_conv2").kernel_size == (1, 1)  # the 5x5 head shrinks to the 1x1 map at 75
    images, history = _train_one_epoch(model, run_eagerly=True)
    _check_weighted_loss(history, {"predictions": 1.0, "aux_predictions": 0.4})
    _check_inference_model(model, images)


def test_auxiliary_option_errors_and_helpers():
    with pytest.raises(ValueError, match="include_top=True"):
        keras_cnn.build("googlenet", aux_logits=True, include_top=False)
    with pytest.raises(ValueError, match="fixed input height and width"):
        keras_cnn.build("inception_v3", aux_logits=True, input_shape=(None, None, 3))
    with pytest.raises(TypeError, match="aux_logits must be True or False"):
        keras_cnn.build("googlenet", aux_logits=1)
    with pytest.raises(ValueError, match="kernel_5x5 must be one of 5, 3"):
        keras_cnn.build("googlenet", kernel_5x5=7)
    with pytest.raises(TypeError, match="keras.Model"):
        inference_model("googlenet")
    plain = keras_cnn.build("googlenet", input_shape=(32, 32, 3), include_top=False)
    assert inference_model(plain) is plain
    with pytest.raises(ValueError, match="auxiliary heads"):
        aux_compile_kwargs(plain)


# BN-Inception (seed 003 §4.2, Ioffe & Szegedy 2015 Fig. 5)

@pytest.mark.xdist_group("inception_v2")
def test_inception_v2_matches_the_seed_weight_table():
    model = keras_cnn.build("inception_v2")
    measured = {"conv1": kernel_count(model, "conv1_"), "conv2": kernel_count(model, "conv2_"),
                "fc": kernel_count(model, "predictions")}
    measured.update({m: kernel_count(model, f"inception_{m}_") for m in
                     ("3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a", "5b")})
    expected = {**INCEPTION_V2_SEED_TABLE, **INCEPTION_V2_CORRECTIONS}
    assert measured == expected
    # the two misprinted rows are the only differences from the seed, whose column sums to its printed total
    assert {k for k in expected if expected[k] != INCEPTION_V2_SEED_TABLE[k]} == {"3a", "4a"}
    assert sum(INCEPTION_V2_SEED_TABLE.values()) == INCEPTION_V2_SEED_TOTAL == 11_264_111
    assert sum(measured.values()) == INCEPTION_V2_WEIGHTS == 11_264_192
    assert shapes(model, ["pool2_3x3_s2", "inception_3a", "inception_3b", "inception_3c", "inception_4a",
                          "inception_4c", "inception_4e", "inception_5a", "inception_5b"]) == {
        "pool2_3x3_s2": (28, 28, 192), "inception_3a": (28, 28, 256), "inception_3b": (28, 28, 320),
        "inception_3c": (14, 14, 576), "inception_4a": (14, 14, 576), "inception_4c": (14, 14, 608),
        "inception_4e": (7, 7, 1056), "inception_5a": (7, 7, 1024), "inception_5b": (7, 7, 1024)}
    pools = {m: type(model.get_layer(f"inception_{m}_b{4 if m not in ('3c', '4e') else 3}_1_"
                                     f"{'avg' if m not in ('3c', '4e', '5b') else 'max'}pool")).__name__
             for m in ("3a", "3c", "4d", "4e", "5a", "5b")}
    assert pools == {"3a": "AveragePooling2D", "3c": "MaxPooling2D", "4d": "AveragePooling2D",
                     "4e": "MaxPooling2D", "5a": "AveragePooling2D", "5b": "MaxPooling2D"}
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)  # the paper removed it


# Inception-v3 (seed 003 §4.3; keras.applications.InceptionV3)

@pytest.mark.xdist_group("inception_v3")
def test_inception_v3_grids_and_auxiliary_head_at_299():
    model = keras_cnn.build("inception_v3", aux_logits=True)
    assert shapes(model, ["maxpool_5a_3x3", "mixed_5b", "mixed_5d", "mixed_6a", "mixed_6e", "mixed_7a",
                          "mixed_7c", "aux_avgpool", "aux_conv1", "aux_conv2"]) == {
        "maxpool_5a_3x3": (35, 35, 192), "mixed_5b": (35, 35, 256), "mixed_5d": (35, 35, 288),
        "mixed_6a": (17, 17, 768), "mixed_6e": (17, 17, 768), "mixed_7a": (8, 8, 1280), "mixed_7c": (8, 8, 2048),
        "aux_avgpool": (5, 5, 768), "aux_conv1": (5, 5, 128), "aux_conv2": (1, 1, 768)}
    # factorised 7x7 (1x7 then 7x1) in the 17x17 modules
    assert model.get_layer("mixed_6b_b2_2_1x7").kernel_size == (1, 7)
    assert model.get_layer("mixed_6b_b2_3_7x1").kernel_size == (7, 1)
    aux_head = 768 * 128 + 128 + 128 * 768 * 25 + 768 + 768 * 1000 + 1000  # BN betas, no gamma
    assert trainable_count(model) == 23_817_352 + aux_head


@pytest.mark.parametrize("name, reference, size", [
    grouped("inception_v3", "InceptionV3", 75), grouped("xception", "Xception", 71)])
def test_weights_match_keras_applications_one_to_one(name, reference, size):
    ours = small_model(name)
    theirs = getattr(keras.applications, reference)(weights=None, input_shape=(size, size, 3),
                                                     classes=SMALL_CLASSES)
    assert sorted(tuple(w.shape) for w in ours.weights) == sorted(tuple(w.shape) for w in theirs.weights)
    assert trainable_count(ours) == trainable_count(theirs)


@pytest.mark.xdist_group("se_inception_v3")
def test_se_inception_v3_has_an_se_block_after_every_module():
    model = small_model("se_inception_v3")
    modules = ["mixed_5b", "mixed_5c", "mixed_5d", "mixed_6a", "mixed_6b", "mixed_6c", "mixed_6d", "mixed_6e",
               "mixed_7a", "mixed_7b", "mixed_7c"]
    for module in modules:
        squeeze = model.get_layer(f"{module}_se_squeeze")
        assert squeeze.input is model.get_layer(module).output
        channels = model.get_layer(module).output.shape[-1]
        assert model.get_layer(f"{module}_se_reduce").filters == channels // 16
    assert sum(layer.name.endswith("_se_excite") for layer in model.layers) == len(modules)
    # The channel count se_reduction is checked against is the built modules' own (narrowest: mixed_5b's 256).
    assert module_channels(INCEPTION_V3.modules, V3_STEM_CHANNELS) == {m: model.get_layer(m).output.shape[-1]
                                                                      for m in modules}
    with pytest.raises(ValueError, match="se_reduction must be >= 1"):
        dataclasses.replace(INCEPTION_V3, se_reduction=0)
    with pytest.raises(TypeError, match="se_reduction must be an integer; received 16.0"):
        dataclasses.replace(INCEPTION_V3, se_reduction=16.0)


def test_se_reduction_up_to_the_narrowest_module_keeps_one_squeeze_channel_and_beyond_is_refused():
    model = build_variant("inception_v3", {"se_reduction": 256}, input_shape=(75, 75, 3), classes=2)
    assert model.get_layer("mixed_5b_se_reduce").filters == 1  # 256 // 256, not clamped
    with pytest.raises(ValueError, match=r"se_reduction must be at most 256 \(the narrowest module's channels\) "
                                         r"or None; received 257"):
        dataclasses.replace(INCEPTION_V3, se_reduction=257)


# Inception-v4 and Inception-ResNet (seed 003 §4.4)

SEED_REDUCTION_A = {"inception_v4": (192, 224, 256, 384), "inception_resnet_v1": (192, 192, 256, 384),
                    "inception_resnet_v2": (256, 256, 256, 384)}


@pytest.mark.parametrize("name", [grouped(n) for n in SEED_REDUCTION_A])
def test_reduction_a_follows_the_k_l_m_n_table(name):
    model = small_model(name)
    filters = tuple(model.get_layer(f"mixed_6a_{layer}").filters for layer in ("b2_1_1x1", "b2_2_3x3", "b2_3_3x3",
                                                                              "b1_1_3x3"))
    expected = SEED_REDUCTION_A[name]
    if name == "inception_resnet_v2":  # the seed misprints m; the paper's Table 1 and the release have 384
        expected = (256, 256, 384, 384)
    assert filters == expected
    # TF-slim's channel order: conv n | k-l-m | max pooling (the released weights, timm, keras.applications)
    assert concatenated(model, "mixed_6a") == ["mixed_6a_b1_1_3x3_relu", "mixed_6a_b2_3_3x3_relu",
                                               "mixed_6a_b3_1_maxpool"]
    assert model.get_layer("mixed_6a").output.shape[-1] == model.get_layer("mixed_6a_b3_1_maxpool").output.shape[
        -1] + expected[2] + expected[3]


def concatenated(model, name):
    """The layers whose outputs the concatenation ``name`` joins, in channel order."""
    return [t._keras_history.operation.name for t in model.get_layer(name).input]


@pytest.mark.xdist_group("inception_v4")
def test_inception_v4_blocks_are_in_tf_slims_order():
    """The released weights (TF-slim, timm's inception_v4) fix what the paper's figures leave open: pooling
    branches last, Inception-B's double 7x7 branch 7x1 first, Inception-C's double 3x3 branch 3x1 first and its
    last fork 1x3 then 3x1 (40 kernels had the transposed shapes before)."""
    model = small_model("inception_v4")
    kernels = {name: [model.get_layer(layer.name).kernel_size for layer in model.layers
                      if layer.name.startswith(f"{name}_b3_") and isinstance(layer, keras.layers.Conv2D)]
               for name in ("mixed_6b", "mixed_6h", "mixed_7b", "mixed_7d")}
    assert kernels["mixed_6b"] == kernels["mixed_6h"] == [(1, 1), (7, 1), (1, 7), (7, 1), (1, 7)]
    assert kernels["mixed_7b"] == kernels["mixed_7d"] == [(1, 1), (3, 1), (1, 3), (1, 3), (3, 1)]
    assert concatenated(model, "mixed_5b")[-1] == "mixed_5b_b4_2_1x1_relu"
    assert concatenated(model, "mixed_7a")[-1] == "mixed_7a_b3_1_maxpool"
    assert model.get_layer("mixed_5b_b4_1_avgpool") and model.get_layer("mixed_7b_b4_1_avgpool")
    assert concatenated(model, "mixed_3a")[0] == "mixed_3a_b1_1_maxpool"  # the stem's one pool-first module


@pytest.mark.xdist_group("inception_resnet_v2")
def test_inception_resnet_reductions_concatenate_pooling_last():
    model = small_model("inception_resnet_v2")
    assert concatenated(model, "mixed_7a") == ["mixed_7a_b1_2_3x3_relu", "mixed_7a_b2_2_3x3_relu",
                                               "mixed_7a_b3_3_3x3_relu", "mixed_7a_b4_1_maxpool"]
    v1 = keras_cnn.build("inception_resnet_v1", include_top=False, input_shape=(75, 75, 3))
    assert concatenated(v1, "mixed_7a")[-1] == "mixed_7a_b4_1_maxpool"


@pytest.mark.xdist_group("inception_v4")
def test_inception_v4_grids_at_299():
    model = keras_cnn.build("inception_v4", include_top=False)
    assert shapes(model, ["conv2d_2b_3x3", "mixed_3a", "mixed_4a", "mixed_5a", "mixed_5e", "mixed_6a", "mixed_6h",
                          "mixed_7a", "mixed_7d"]) == {
        "conv2d_2b_3x3": (147, 147, 64), "mixed_3a": (73, 73, 160), "mixed_4a": (71, 71, 192),
        "mixed_5a": (35, 35, 384), "mixed_5e": (35, 35, 384), "mixed_6a": (17, 17, 1024),
        "mixed_6h": (17, 17, 1024), "mixed_7a": (8, 8, 1536), "mixed_7d": (8, 8, 1536)}
    with pytest.raises(ValueError):
        model.get_layer("mixed_5f")  # 4 x Inception-A, 7 x B (6b-6h), 3 x C (7b-7d)


@pytest.mark.xdist_group("inception_resnet_v1")
def test_inception_resnet_v1_grids_at_299_and_residual_scales():
    model = keras_cnn.build("inception_resnet_v1", include_top=False)
    assert shapes(model, ["conv2d_4b_3x3", "block35_5", "mixed_6a", "block17_10", "mixed_7a", "block8_5"]) == {
        "conv2d_4b_3x3": (35, 35, 256), "block35_5": (35, 35, 256), "mixed_6a": (17, 17, 896),
        "block17_10": (17, 17, 896), "mixed_7a": (8, 8, 1792), "block8_5": (8, 8, 1792)}
    scales = {layer.name: layer.scale for layer in model.layers if isinstance(layer, ScaledResidual)}
    assert len(scales) == 5 + 10 + 5
    assert {s for n, s in scales.items() if n.startswith("block35")} == {0.17}
    assert {s for n, s in scales.items() if n.startswith("block17")} == {0.10}
    assert {s for n, s in scales.items() if n.startswith("block8")} == {0.20}
    up = model.get_layer("block17_1_up")  # linear 1x1 projection with bias, back to the block's input width
    assert up.activation is keras.activations.linear and up.use_bias and up.filters == 896


@pytest.mark.xdist_group("inception_resnet_v2")
def test_inception_resnet_v2_release_structure():
    model = small_model("inception_resnet_v2")
    blocks = [layer for layer in model.layers if isinstance(layer, ScaledResidual)]
    assert len(blocks) == 10 + 20 + 10
    last = model.get_layer("block8_10")  # the released model's last block: unscaled, no ReLU
    assert isinstance(last, ScaledResidual) and last.scale == 1.0
    assert [model.get_layer(n).output.shape[-1] for n in ("mixed_5b", "mixed_6a", "mixed_7a", "conv2d_7b_1x1")] == [
        320, 1088, 2080, 1536]


def test_residual_scale_option_and_layer():
    model = keras_cnn.build("inception_resnet_v1", residual_scale=0.3, include_top=False, input_shape=(75, 75, 3))
    assert {layer.scale for layer in model.layers if isinstance(layer, ScaledResidual)} == {0.3}
    for bad in (1.5, (0.1, 0.2)):
        with pytest.raises(ValueError, match="residual_scale"):
            keras_cnn.build("inception_resnet_v2", residual_scale=bad)
    layer = ScaledResidual(0.2)
    a, b = np.ones((1, 2, 2, 3), "float32"), np.full((1, 2, 2, 3), 5.0, "float32")
    np.testing.assert_allclose(layer([a, b]), a + 0.2 * b)
    assert ScaledResidual.from_config(layer.get_config()).scale == 0.2


# Xception (seed 003 §4.5)

@pytest.mark.xdist_group("xception")
def test_xception_flows():
    model = small_model("xception")
    separable = [layer for layer in model.layers if isinstance(layer, keras.layers.SeparableConv2D)]
    plain = [layer for layer in model.layers if type(layer) is keras.layers.Conv2D]
    assert len(separable) + len([c for c in plain if c.kernel_size == (3, 3)]) == 36  # the paper's 36 conv layers
    assert [layer.name for layer in model.layers if layer.name.endswith("_add")] == [
        f"block{i}_add" for i in range(2, 14)]  # 3 entry + 8 middle + 1 exit residual connections
    assert {layer.filters for layer in separable if layer.name.startswith(("block5", "block12"))} == {728}
    assert model.get_layer("head_dropout").rate == 0.5
    assert not any(layer.use_bias for layer in separable)


# Published counts of option variants (torchvision, timm)

@pytest.mark.parametrize("label", [pytest.param(label, id=label.replace(" ", "_"),
                                                marks=pytest.mark.xdist_group(VARIANTS[label][0]))
                                   for label in VARIANTS])
def test_variant_parameter_counts(label):
    name, kwargs, expected, source = VARIANTS[label]
    assert trainable_count(keras_cnn.build(name, **kwargs)) == expected, source


@pytest.mark.xdist_group("googlenet")
def test_classifier_activation_applies_to_auxiliary_heads():
    model = keras_cnn.build("googlenet", aux_logits=True, input_shape=(32, 32, 3), classes=SMALL_CLASSES,
                            classifier_activation=None)
    outs = model(random_images(model), training=False)
    assert len(outs) == 3 and not np.allclose(np.sum(outs[1], axis=1), 1.0)
