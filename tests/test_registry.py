"""The public API: build() and list_models() (the errors a user mistake gets: tests/test_reliability.py)."""

import dataclasses

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


def test_the_architecture_is_the_spec_row_and_options_are_the_rest():
    assert registry.get("vgg16_bn").spec.batch_norm and not registry.get("vgg16").spec.batch_norm
    assert registry.get("vgg16_bn").options == {"dropout": 0.5}
    assert registry.get("alexnet").options == {"groups": 1, "lrn": True, "dropout": 0.5}
    assert registry.get("efficientnet_b2").options == {"dropout": 0.3, "drop_connect_rate": 0.2, "padding": "same",
                                                       "bn_epsilon": 1e-3}
    with pytest.raises(TypeError, match="Unknown option.*'batch_norm' for model 'vgg11'; its options are: dropout"):
        keras_cnn.build("vgg11", batch_norm=True)


def test_every_variant_is_a_frozen_spec_row_with_only_regularisation_defaults():
    """CONTRIBUTING.md, "Spec or option": the architecture is the row; a variant may only change dropout, and an
    ablation option (one named after a spec field) defaults to None, the row's value."""
    ablations = set()
    for name in keras_cnn.list_models():
        entry = registry.get(name)
        assert dataclasses.is_dataclass(entry.spec) and type(entry.spec).__name__.endswith("Spec"), name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(entry.spec, dataclasses.fields(entry.spec)[0].name, None)
        assert set(entry.defaults) <= {"dropout"}, (name, entry.defaults)
        fields = {field.name for field in dataclasses.fields(entry.spec)}
        assert {k: v for k, v in entry.options.items() if k in fields and v is not None} == {}, name
        ablations |= fields & set(entry.options)
    assert {"shortcut", "stride_in_1x1"} <= ablations


def test_option_overrides_the_variant_default():
    model = keras_cnn.build("efficientnet_b2", input_shape=(32, 32, 3), classes=3, dropout=0.1)
    assert model.get_layer("head_dropout").rate == 0.1  # the variant's default is 0.3


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
