"""keras_cnn.feature_extractor: the last cut-point map at each total stride, for every registered model."""

import functools
import math

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import registry
from tests.conftest import model_params

KEYS = ("stride2", "stride4", "stride8", "stride16", "stride32")

# (input size, {key: (spatial size, layer that produces the map)}): the rule's picks, family by family
EXPECTED = {
    "resnet50": (224, {"stride2": (112, "stem_conv_relu"), "stride4": (56, "stage1_block3_out"),
                       "stride8": (28, "stage2_block4_out"), "stride16": (14, "stage3_block6_out"),
                       "stride32": (7, "stage4_block3_out")}),
    # pre-activation: a projection shortcut starts after the next block's BN-ReLU, so that is the cut point
    "resnet50_v2": (224, {"stride2": (112, "stem_conv_relu"), "stride4": (56, "stage2_block1_preact_relu"),
                          "stride8": (28, "stage3_block1_preact_relu"), "stride16": (14, "stage4_block1_preact_relu"),
                          "stride32": (7, "post_relu")}),
    "vgg16": (224, {"stride2": (112, "block2_conv2"), "stride4": (56, "block3_conv3"),
                    "stride8": (28, "block4_conv3"), "stride16": (14, "block5_conv3"),
                    "stride32": (7, "block5_pool")}),
    # the stem's zero padding before pool1 (114x114) is skipped for its input; a transition's 1x1 convolution
    # comes before its pooling
    "densenet121": (224, {"stride2": (112, "conv1_relu"), "stride4": (56, "transition1_conv"),
                          "stride8": (28, "transition2_conv"), "stride16": (14, "transition3_conv"),
                          "stride32": (7, "final_relu")}),
    # the expansion that feeds a strided depthwise convolution, as TensorFlow's SSDLite taps it
    "mobilenet_v2": (224, {"stride2": (112, "stage2_block1_expand_relu6"),
                           "stride4": (56, "stage3_block1_expand_relu6"),
                           "stride8": (28, "stage4_block1_expand_relu6"),
                           "stride16": (14, "stage6_block1_expand_relu6"), "stride32": (7, "conv_last_relu6")}),
    "inception_v3": (299, {"stride2": (147, "conv2d_2b_3x3_relu"), "stride4": (71, "conv2d_4a_3x3_relu"),
                           "stride8": (35, "mixed_5d"), "stride16": (17, "mixed_6e"), "stride32": (8, "mixed_7c")}),
    "alexnet": (227, {"stride4": (55, "conv1"), "stride8": (27, "conv2"), "stride16": (13, "conv5"),
                      "stride32": (6, "pool5")}),
    "lenet5": (32, {"stride2": (10, "c3"), "stride4": (1, "c5")}),
    "squeezenet1_0": (227, {"stride2": (111, "conv1"), "stride4": (55, "fire4_concat"),
                            "stride8": (27, "fire8_concat"), "stride16": (13, "fire9_concat")}),
    # ShuffleNet's first unit reads pool1 in both branches
    "shufflenet_v1_g1": (224, {"stride2": (112, "conv1_relu"), "stride4": (56, "pool1"),
                               "stride8": (28, "stage2_block4_relu"), "stride16": (14, "stage3_block8_relu"),
                               "stride32": (7, "stage4_block4_relu")}),
}

# small and fast at their minimum input: a forward pass checks the deepest map against the trunk's output
FORWARD = ("lenet5", "resnet20", "squeezenet1_1", "mobilenet_v3_small", "shufflenet_v2_x0_5", "densenet_bc_100")


def test_size(name):
    """224, or the registry's default where it is 32 (CIFAR, LeNet), 227 (AlexNet, SqueezeNet) or 299 (the
    Inception-v3 family and Xception)."""
    default = registry.get(name).default_input
    return default if default[0] in (32, 227, 299) else (224, 224, 3)


test_size.__test__ = False


@functools.lru_cache(maxsize=2)
def trunk(name, size=None):
    """``name`` built once with include_top=False at ``size`` (default: :func:`test_size`)."""
    shape = test_size(name) if size is None else (size, size, registry.get(name).default_input[-1])
    return keras_cnn.build(name, include_top=False, input_shape=shape)


def producer(tensor):
    return tensor._keras_history.operation.name


def check_maps(features, model, size):
    """Keys in increasing stride order, sizes decreasing and at most ceil(size / stride), the deepest map the
    trunk's output tensor; returns the outputs."""
    maps = features.output
    keys = list(maps)
    assert keys and set(keys) <= set(KEYS) and keys == sorted(keys, key=KEYS.index)
    sizes = [maps[k].shape[1] for k in keys]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
    for key, tensor in maps.items():
        assert tensor.shape[1] == tensor.shape[2] <= math.ceil(size / int(key[6:]))
    assert maps[keys[-1]] is model.outputs[0] and maps[keys[-1]].shape == model.output_shape
    assert features.inputs[0] is model.inputs[0] and features.name == f"{model.name}_features"
    return maps


@pytest.mark.parametrize("name", model_params(harness=True))
def test_every_model(name):
    model = trunk(name)
    maps = check_maps(keras_cnn.feature_extractor(model), model, model.input_shape[1])
    if name in EXPECTED:
        size, expected = EXPECTED[name]
        assert model.input_shape[1] == size
        assert {k: (t.shape[1], producer(t)) for k, t in maps.items()} == expected


@pytest.mark.parametrize("name", FORWARD)
def test_deepest_map_is_the_trunk_output(name):
    model = trunk(name, registry.get(name).min_input)
    features = keras_cnn.feature_extractor(model)
    image = np.random.default_rng(0).uniform(0, 1, (1, *model.input_shape[1:])).astype("float32")
    outputs = features(image)  # eager: tracing predict() would cost more than the whole pass
    np.testing.assert_array_equal(outputs[list(outputs)[-1]], model(image))


@pytest.mark.parametrize("name, options, shape, keys", [
    ("resnet18", {}, (64, 64, 3), KEYS),
    ("resnet18", {}, (None, None, 3), KEYS),  # strides come from the graph, not from sizes
    ("resnet20", {"drop_path_rate": 0.2}, (32, 32, 3), KEYS[:2]),  # StochasticDepth wraps the branches
    ("densenet_bc_100", {"memory_efficient": True}, (32, 32, 3), KEYS[:2]),  # ConcatBNReLUConv on lists
    ("shufflenet_v1_g2", {"grouped_conv": "split", "shortcut_pool": "depthwise"}, (64, 64, 3), KEYS),
])
def test_name_with_build_arguments(name, options, shape, keys):
    features = keras_cnn.feature_extractor(name, input_shape=shape, **options)
    assert tuple(features.output) == keys and features.name == f"{name}_features"
    assert features.input_shape == (None, *shape)
    size = shape[0] or 64
    maps = features.output
    if shape[0] is None:  # sizes only at run time
        maps = features(np.zeros((1, size, size, 3), "float32"))
    assert [t.shape[1] for t in maps.values()] == [math.ceil(size / int(k[6:])) for k in keys]


def test_trunk_argument_shares_layers_and_weights():
    model = keras_cnn.build("mobilenet_v3_small", include_top=False, input_shape=(64, 64, 3))
    features = keras_cnn.feature_extractor(model)
    check_maps(features, model, 64)
    assert features.get_layer("conv1") is model.get_layer("conv1")
    assert len(features.weights) == len(model.weights)


@pytest.mark.parametrize("options", [{}, {"include_top": False, "pooling": "avg"}, {"aux_logits": True}],
                         ids=["classifier", "pooled", "aux_heads"])
def test_any_keras_cnn_model_gives_its_trunk_over_its_own_layers(options):
    """The model's config names its trunk; the features model reuses the model's layers (no copy)."""
    model = keras_cnn.build("googlenet", input_shape=(96, 96, 3), classes=3, **options)
    features = keras_cnn.feature_extractor(model)
    by_name = keras_cnn.feature_extractor("googlenet", input_shape=(96, 96, 3))
    assert {k: t.shape for k, t in features.output.items()} == {k: t.shape for k, t in by_name.output.items()}
    assert features.inputs[0] is model.inputs[0] and features.output["stride32"].shape[1:] == (3, 3, 1024)
    assert all(any(layer is mine for mine in model.layers) for layer in features.layers)


def test_build_arguments_with_a_model_make_a_new_trunk_with_its_weights():
    model = keras_cnn.build("lenet5")
    features = keras_cnn.feature_extractor(model, input_shape=(96, 96, 1))
    assert features.output["stride4"].shape[1:3] == (17, 17)
    np.testing.assert_array_equal(features.get_layer("c1").get_weights()[0], model.get_layer("c1").get_weights()[0])
    assert features.get_layer("c1") is not model.get_layer("c1")


def test_a_model_without_build_config_must_be_a_trunk():
    fcn = keras_cnn.to_fcn(keras_cnn.build("lenet5"))  # 4-D class maps, no build config
    with pytest.raises(ValueError, match="needs a registered model name .* or a trunk .*no build config"):
        keras_cnn.feature_extractor(fcn)


@pytest.mark.parametrize("arg, value", [("include_top", True), ("pooling", "avg")])
def test_head_arguments_are_rejected(arg, value):
    with pytest.raises(ValueError, match=f"builds the trunk .*{arg}"):
        keras_cnn.feature_extractor("lenet5", **{arg: value})


def test_model_or_name_type():
    with pytest.raises(TypeError, match="model_or_name must be a registered model name .* received int"):
        keras_cnn.feature_extractor(3)


@keras.saving.register_keras_serializable(package="test_features")
class Subsample(keras.layers.Layer):
    """Every ``step``-th row and column; ``strides`` set only when ``declare`` is true."""

    def __init__(self, step=2, declare=False, **kwargs):
        super().__init__(**kwargs)
        self.step = step
        if declare:
            self.strides = step

    def call(self, inputs):
        return inputs[:, ::self.step, ::self.step, :]


def small_graph(layer, size=16):
    image = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(image)
    x = keras.layers.Cropping2D(1, name="crop")(x)  # shrinks, keeps the stride
    return keras.Model(image, keras.layers.Conv2D(4, 1, name="out")(layer(x)))


def test_unknown_layer_with_strides_is_handled():
    features = keras_cnn.feature_extractor(small_graph(Subsample(declare=True, name="sub")))
    assert {k: (t.shape[1], producer(t)) for k, t in features.output.items()} == {"stride2": (7, "out")}


@pytest.mark.parametrize("layer", [Subsample(name="sub"), keras.layers.UpSampling2D(name="sub")])
def test_layer_changing_the_size_without_strides_raises(layer):
    with pytest.raises(ValueError, match="cannot tell the stride of layer 'sub' .*has no `strides` attribute"):
        keras_cnn.feature_extractor(small_graph(layer))


def test_nested_model_counts_its_strides():
    inner = keras_cnn.build("lenet5", include_top=False)
    image = keras.Input((32, 32, 1))
    outer = keras.Model(image, keras.layers.Conv2D(2, 1, name="head")(inner(image)), name="outer")
    features = keras_cnn.feature_extractor(outer)
    assert {k: (t.shape[1], producer(t)) for k, t in features.output.items()} == {"stride4": (1, "head")}
