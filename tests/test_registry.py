"""The public API: build() and list_models() (the errors a user mistake gets: tests/test_reliability.py)."""

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


def test_names_are_case_insensitive_and_model_name_overridable():
    model = keras_cnn.build("LeNet5", name="digits_net", classes=10)
    assert model.name == "digits_net"


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
