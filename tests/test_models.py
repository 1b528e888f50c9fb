"""The harness every registered model goes through (parametrised over keras_cnn.list_models())."""

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import registry
from tests.conftest import SMALL_CLASSES, model_params, random_images, small_model, small_size

MODELS = model_params(harness=True)


@pytest.mark.parametrize("name", MODELS)
def test_output_is_a_finite_distribution(name):
    model = small_model(name)
    out = model(random_images(model), training=False).numpy()
    assert out.shape == (2, SMALL_CLASSES)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    assert model.layers[-1].name == "predictions"


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("pooling, channels", [("avg", 1), ("max", 4), (None, 3)])
def test_headless_pooling_and_channels(name, pooling, channels):
    size = small_size(name)
    # untrained ResNet-1202 reaches ~1e37 in inference mode (units grow ~1.15x each): start its units at identity
    options = {"zero_init_last": True} if name == "resnet1202" else {}
    model = keras_cnn.build(name, include_top=False, pooling=pooling, input_shape=(size, size, channels), **options)
    out = model(random_images(model), training=False).numpy()
    if pooling:
        pool_type = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D}[pooling]
        assert isinstance(model.layers[-1], pool_type)
        assert out.shape == (2, model.output_shape[-1])
    else:
        assert out.ndim == 4 and out.shape == (2, *model.output_shape[1:])
    assert np.all(np.isfinite(out))
    assert not any(layer.name == "predictions" for layer in model.layers)


@pytest.mark.parametrize("name", MODELS)
def test_save_and_reload_safe_mode(name, tmp_path):
    model = small_model(name)
    images = random_images(model)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert [layer.name for layer in reloaded.layers] == [layer.name for layer in model.layers]
    assert isinstance(reloaded, keras_cnn.CNNModel)  # the build config travels with the file
    assert keras_cnn.model_config(reloaded) == keras_cnn.model_config(model)
    # direct calls: predict() would trace a graph per model, which dominates the harness's time
    np.testing.assert_allclose(reloaded(images, training=False), model(images, training=False), atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_one_step_updates_every_trainable_weight(name):
    # seeded: at 32x32 with 3 classes, about 1 random initialisation in 30 leaves SqueezeNet's three final
    # convolution + ReLU units dead on these 4 images (no BN), and then no gradient reaches any weight
    keras.utils.set_random_seed(0)
    model = keras_cnn.build(name, input_shape=small_model(name).input_shape[1:], classes=SMALL_CLASSES)
    images = random_images(model, batch=4, seed=1)
    labels = np.arange(4) % SMALL_CLASSES
    before = [w.numpy().copy() for w in model.trainable_weights]
    # eager: one step does not repay tracing a training graph (64 s vs 7 s for Inception-ResNet-v2)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy", run_eagerly=True)
    model.train_on_batch(images, labels)
    frozen = [w.path for w, old in zip(model.trainable_weights, before) if np.array_equal(w.numpy(), old)]
    assert not frozen, f"no gradient reached {frozen}"


@pytest.mark.parametrize("name", MODELS)
def test_minimum_input_and_variable_size(name):
    entry = registry.get(name)
    m = entry.min_input
    keras_cnn.build(name, input_shape=(m, m, 3), classes=2)
    with pytest.raises(ValueError, match=f"at least {m}"):
        keras_cnn.build(name, input_shape=(m - 1, m, 3), classes=2)
    headless = keras_cnn.build(name, include_top=False, input_shape=(None, None, 3))
    assert headless.output_shape[1:3] == (None, None)
    if entry.fixed_input:
        with pytest.raises(ValueError, match="fixed height and width"):
            keras_cnn.build(name, input_shape=(None, None, 3))
    else:
        variable = keras_cnn.build(name, input_shape=(None, None, 3), classes=2)
        assert variable(np.zeros((1, m + 5, m, 3), "float32")).shape == (1, 2)


@pytest.mark.parametrize("name", MODELS)
def test_default_input_shape_and_name(name):
    entry = registry.get(name)
    model = keras_cnn.build(name, include_top=False)
    assert model.input_shape[1:] == entry.default_input
    assert model.name == name
