"""The classic family against the seed's tables (../shared/seeds/003 §1-3, 004) and the papers."""

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import registry
from keras_cnn.layers import LocalResponseNormalization

NAMES = ["lenet5", "alexnet", "alexnet_owt", "vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19",
         "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "nin"]


def shapes(model, names):
    return {name: tuple(model.get_layer(name).output.shape[1:]) for name in names}


def test_issue_names_are_registered():
    assert set(NAMES) <= set(keras_cnn.list_models())


def test_lenet5_matches_the_seed_table():
    model = keras_cnn.build("lenet5", classes=10)
    assert shapes(model, ["c1", "s2", "c3", "s4", "c5", "f6", "predictions"]) == {
        "c1": (28, 28, 6), "s2": (14, 14, 6), "c3": (10, 10, 16), "s4": (5, 5, 16),
        "c5": (1, 1, 120), "f6": (84,), "predictions": (10,)}
    assert isinstance(model.get_layer("s2"), keras.layers.AveragePooling2D)
    assert model.get_layer("c1").activation is keras.activations.tanh


def test_lenet5_modern_option():
    model = keras_cnn.build("lenet5", classes=10, activation="relu", pool="max")
    assert isinstance(model.get_layer("s4"), keras.layers.MaxPooling2D)
    assert model.get_layer("f6").activation is keras.activations.relu


def test_alexnet_matches_the_seed_table():
    model = keras_cnn.build("alexnet")
    assert shapes(model, ["conv1", "pool1", "lrn1", "conv2", "pool2", "lrn2", "conv3", "conv4", "conv5",
                          "pool5", "fc6", "fc7", "predictions"]) == {
        "conv1": (55, 55, 96), "pool1": (27, 27, 96), "lrn1": (27, 27, 96), "conv2": (27, 27, 256),
        "pool2": (13, 13, 256), "lrn2": (13, 13, 256), "conv3": (13, 13, 384), "conv4": (13, 13, 384),
        "conv5": (13, 13, 256), "pool5": (6, 6, 256), "fc6": (4096,), "fc7": (4096,), "predictions": (1000,)}
    # seed table: per-layer parameters (weights + biases)
    params = {layer.name: layer.count_params() for layer in model.layers}
    assert [params[n] for n in ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "predictions"]] == [
        34_944, 614_656, 885_120, 1_327_488, 884_992, 37_752_832, 16_781_312, 4_097_000]
    assert [model.get_layer(n).rate for n in ("fc6_dropout", "fc7_dropout")] == [0.5, 0.5]
    lrn = model.get_layer("lrn1")
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)


def test_alexnet_two_gpu_groups():
    model = keras_cnn.build("alexnet", groups=2, include_top=False)
    assert [model.get_layer(f"conv{i}").groups for i in range(1, 6)] == [1, 2, 1, 2, 2]
    # conv2/4/5 see half the input channels: kernel depth 48, 192, 192 (Krizhevsky et al., Fig. 2)
    assert [model.get_layer(f"conv{i}").kernel.shape[2] for i in (2, 4, 5)] == [48, 192, 192]
    without_lrn = keras_cnn.build("alexnet", lrn=False, include_top=False)
    assert not any("lrn" in layer.name for layer in without_lrn.layers)
    with pytest.raises(ValueError, match="groups must be one of 1, 2; received 3"):
        keras_cnn.build("alexnet", groups=3)


def test_alexnet_owt_is_torchvisions_one_gpu_column():
    """torchvision's alexnet (cuda-convnet2's layers-imagenet-1gpu.cfg): 64-192-384-256-256 filters, conv1 padded
    by 2 on every side, no LRN, the same 6x6x256 map at 224x224 as the paper's model at 227x227."""
    model = keras_cnn.build("alexnet_owt")
    assert shapes(model, ["conv1_pad", "conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5",
                          "fc6", "fc7", "predictions"]) == {
        "conv1_pad": (228, 228, 3), "conv1": (55, 55, 64), "pool1": (27, 27, 64), "conv2": (27, 27, 192),
        "pool2": (13, 13, 192), "conv3": (13, 13, 384), "conv4": (13, 13, 256), "conv5": (13, 13, 256),
        "pool5": (6, 6, 256), "fc6": (4096,), "fc7": (4096,), "predictions": (1000,)}
    assert not any(isinstance(layer, LocalResponseNormalization) for layer in model.layers)
    grouped = keras_cnn.build("alexnet_owt", groups=2, include_top=False)
    assert [grouped.get_layer(f"conv{i}").kernel.shape[2] for i in (2, 4, 5)] == [32, 192, 128]


@pytest.mark.parametrize("name, convs, one_by_one", [
    ("vgg11", 8, 0), ("vgg13", 10, 0), ("vgg16_c", 13, 3), ("vgg16", 13, 0), ("vgg19", 16, 0)])
def test_vgg_columns_of_table_1(name, convs, one_by_one):
    model = keras_cnn.build(name, include_top=False, input_shape=(32, 32, 3))
    conv_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(conv_layers) == convs  # + 3 fully connected = 11, 13, 16, 16, 19 weight layers
    assert sum(layer.kernel_size == (1, 1) for layer in conv_layers) == one_by_one
    assert [layer.filters for layer in conv_layers][-1] == 512
    assert model.output_shape == (None, 1, 1, 512)


def test_vgg_a_lrn_and_batch_norm_layers():
    lrn = keras_cnn.build("vgg11_lrn", include_top=False, input_shape=(32, 32, 3))
    assert [layer.name for layer in lrn.layers][1:3] == ["block1_conv1", "block1_lrn"]
    bn = keras_cnn.build("vgg16_bn", include_top=False, input_shape=(32, 32, 3))
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in bn.layers) == 13
    assert bn.get_layer("block3_conv2_bn") and bn.get_layer("block3_conv2_relu")


def test_vgg16_default_feature_map_and_head():
    model = keras_cnn.build("vgg16")
    assert shapes(model, ["block5_pool", "fc6", "fc7", "predictions"]) == {
        "block5_pool": (7, 7, 512), "fc6": (4096,), "fc7": (4096,), "predictions": (1000,)}
    assert model.get_layer("fc6").count_params() == 7 * 7 * 512 * 4096 + 4096  # seed: ~1.02e8 in fc6


def test_nin_reproduces_the_caffe_6x6_map_at_224():
    model = keras_cnn.build("nin")
    assert shapes(model, ["block1_conv", "block1_pool", "block2_pool", "block3_pool", "classifier_conv"]) == {
        "block1_conv": (54, 54, 96), "block1_pool": (27, 27, 96), "block2_pool": (13, 13, 256),
        "block3_pool": (6, 6, 384), "classifier_conv": (6, 6, 1000)}
    assert not any(isinstance(layer, keras.layers.Dense) for layer in model.layers)
    headless = keras_cnn.build("nin", include_top=False)
    assert headless.output_shape == (None, 6, 6, 1024)


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "alexnet_owt", "vgg16", "nin"])
def test_declared_minimum_input_is_tight(name):
    """One pixel below ``min_input`` the architecture itself cannot be built (validation bypassed)."""
    entry = registry.get(name)
    head = keras_cnn._head.Head.create(True, None, 3, "softmax")
    size = entry.min_input
    entry.builder(keras.Input((size, size, 3)), head, spec=entry.spec, **entry.options)
    with pytest.raises(Exception):
        entry.builder(keras.Input((size - 1, size - 1, 3)), head, spec=entry.spec, **entry.options)


def test_dropout_option_and_inference_determinism():
    model = keras_cnn.build("alexnet", dropout=0.3, input_shape=(67, 67, 3), classes=3)
    assert model.get_layer("fc6_dropout").rate == 0.3
    images = np.random.default_rng(0).random((2, 67, 67, 3)).astype("float32")
    np.testing.assert_array_equal(model(images, training=False), model(images, training=False))
    no_dropout = keras_cnn.build("vgg11", dropout=0.0, input_shape=(32, 32, 3), classes=3)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in no_dropout.layers)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\); received 1.5"):
        keras_cnn.build("vgg11", dropout=1.5)
