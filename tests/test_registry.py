"""The public API: build(), list_models(), and the errors a user mistake gets."""

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import registry


def test_list_models_wildcard_and_sorting():
    names = keras_cnn.list_models()
    assert names == sorted(names)
    assert keras_cnn.list_models("vgg1?_bn") == ["vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]
    assert keras_cnn.list_models("VGG16*") == ["vgg16", "vgg16_bn", "vgg16_c"]
    assert keras_cnn.list_models("nothing*") == []
    with pytest.raises(TypeError, match="pattern"):
        keras_cnn.list_models(3)


def test_unknown_name_suggests_closest():
    with pytest.raises(ValueError, match=r"Unknown model name 'vgg61'.*Closest: .*vgg16"):
        keras_cnn.build("vgg61")
    with pytest.raises(ValueError, match=r"'alexnt'.*alexnet"):
        keras_cnn.build("alexnt")
    with pytest.raises(TypeError, match="name must be a model name"):
        keras_cnn.build(None)


def test_names_are_case_insensitive_and_model_name_overridable():
    model = keras_cnn.build("LeNet5", name="digits_net", classes=10)
    assert model.name == "digits_net"
    with pytest.raises(TypeError, match="name must be a string"):
        keras_cnn.build("lenet5", name=3)


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"pooling": "mean", "include_top": False}, ValueError, r"pooling must be one of None, 'avg', 'max'; received 'mean'"),
        ({"pooling": "avg"}, ValueError, r"pooling applies only when include_top=False"),
        ({"classes": 0}, ValueError, r"classes must be >= 1; received 0"),
        ({"classes": 2.5}, TypeError, r"classes must be an integer; received 2.5"),
        ({"classes": True}, TypeError, r"classes must be an integer"),
        ({"classifier_activation": "softmaxx"}, ValueError, r"classifier_activation must be None, a callable or a Keras activation name.*'softmaxx'"),
        ({"include_top": "yes"}, TypeError, r"include_top must be True or False; received 'yes'"),
        ({"wings": 2}, TypeError, r"Unknown option\(s\) 'wings' for model 'lenet5'; its options are: activation, pool"),
        ({"pool": "median"}, ValueError, r"pool must be one of 'avg', 'max'; received 'median'"),
        ({"activation": "squash"}, ValueError, r"activation must be a callable or a Keras activation name.*'squash'"),
        ({"input_shape": (31, 31, 1)}, ValueError, r"too small for model 'lenet5'.*at least 32"),
        ({"input_shape": (32, 32)}, ValueError, r"input_shape must be a \(height, width, channels\) tuple.*\(32, 32\)"),
        ({"input_shape": (32, 32, 0)}, ValueError, r"input_shape channels must be >= 1; received 0"),
        ({"input_shape": (32, 32, None)}, ValueError, r"channels must be a known integer"),
        ({"input_shape": (32.0, 32, 1)}, TypeError, r"input_shape height must be an integer; received 32.0"),
        ({"input_shape": (None, None, 1)}, ValueError, r"'lenet5' flattens .* fixed height and width"),
        ({"weights": "imagenet"}, ValueError, r"no pretrained weights.*received 'imagenet'"),
        ({"weights": "missing.weights.h5"}, ValueError, r"weights file 'missing.weights.h5' does not exist"),
        ({"weights": 1}, TypeError, r"weights must be None or a path"),
        ({"input_tensor": np.zeros((1, 32, 32, 1))}, TypeError, r"input_tensor must be a Keras tensor"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        keras_cnn.build("lenet5", **{"classes": 10, **kwargs})


def test_variant_options_are_listed_with_variant_defaults():
    assert registry.get("vgg16_bn").options == {"batch_norm": True, "lrn": False, "dropout": 0.5}
    assert registry.get("vgg16").options["batch_norm"] is False
    assert registry.get("alexnet").options == {"groups": 1, "lrn": True, "dropout": 0.5}


def test_option_overrides_the_variant_default():
    plain = keras_cnn.build("vgg11", include_top=False, input_shape=(32, 32, 3), batch_norm=True)
    bn = keras_cnn.build("vgg11_bn", include_top=False, input_shape=(32, 32, 3))
    assert [l.name for l in plain.layers] == [l.name for l in bn.layers]


def test_register_rejects_duplicates_and_unknown_defaults():
    with pytest.raises(ValueError, match="already registered"):
        registry.register("vgg16", family="vgg", default_input=(224, 224, 3), min_input=32)(lambda x, h, *, spec: x)
    with pytest.raises(TypeError, match="not options"):
        registry.register("tmp_model", family="x", default_input=(8, 8, 1), min_input=8, depth=3)(
            lambda x, h, *, spec: x)
    assert "tmp_model" not in keras_cnn.list_models()


def test_input_tensor_is_used_and_checked():
    tensor = keras.Input((40, 40, 2))
    model = keras_cnn.build("lenet5", input_tensor=tensor, classes=4)
    assert model.inputs[0] is tensor
    assert model.output_shape == (None, 4)
    with pytest.raises(ValueError, match="does not match the shape of input_tensor"):
        keras_cnn.build("lenet5", input_tensor=tensor, input_shape=(32, 32, 2))
    with pytest.raises(ValueError, match="too small"):
        keras_cnn.build("lenet5", input_tensor=keras.Input((20, 20, 1)))


def test_input_tensor_inside_a_larger_graph():
    image = keras.Input((64, 64, 3))
    resized = keras.layers.Resizing(32, 32)(image)
    model = keras_cnn.build("lenet5", input_tensor=resized, classes=10)
    assert model.inputs[0] is image
    assert model(np.zeros((1, 64, 64, 3), "float32")).shape == (1, 10)


def test_weights_path_loads_weights(tmp_path):
    source = keras_cnn.build("lenet5", classes=10)
    path = tmp_path / "lenet.weights.h5"
    source.save_weights(path)
    loaded = keras_cnn.build("lenet5", classes=10, weights=str(path))
    images = np.random.default_rng(0).random((2, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), source.predict(images, verbose=0), atol=1e-7)


@pytest.mark.parametrize("activation, check", [
    (None, lambda out: np.any(out < 0)),  # logits: not a distribution
    ("sigmoid", lambda out: np.all((out > 0) & (out < 1)) and not np.allclose(out.sum(1), 1)),
])
def test_classifier_activation(activation, check):
    model = keras_cnn.build("lenet5", classes=10, classifier_activation=activation)
    images = np.random.default_rng(1).normal(size=(4, 32, 32, 1)).astype("float32") * 5
    assert check(model(images).numpy())
