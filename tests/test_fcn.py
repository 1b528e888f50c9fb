"""FCN conversion (seed 003 §2.5) and dense / multi-crop / multi-scale evaluation."""

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import evaluation
from keras_cnn.fcn import total_stride

RNG = np.random.default_rng(0)


def images(n, size, channels=3):
    return RNG.uniform(0, 1, (n, size, size, channels)).astype("float32")


def logits_model(name, size, channels=3, **kwargs):
    return keras_cnn.build(name, input_shape=(size, size, channels), classes=7, classifier_activation=None, **kwargs)


def feature_window_reference(model, fcn, big):
    """Original head applied to every k×k window of the original trunk's feature map on ``big``."""
    flatten = model.get_layer("flatten")
    window = flatten.input.shape[1:3]
    trunk = keras.Model(model.input, flatten.input)
    trunk_fcn = keras.Model(fcn.input, fcn.get_layer(trunk.layers[-1].name).output)
    head_in = keras.Input(flatten.input.shape[1:])
    x = flatten(head_in)
    for layer in model.layers[model.layers.index(flatten) + 1:]:
        x = layer(x)
    head = keras.Model(head_in, x)
    features = trunk_fcn.predict(big, verbose=0)  # trunk weights are copies: same maths at any size
    rows, cols = features.shape[1] - window[0] + 1, features.shape[2] - window[1] + 1
    out = np.empty((len(big), rows, cols, model.output_shape[-1]), "float32")
    for i in range(rows):
        for j in range(cols):
            out[:, i, j] = head.predict(features[:, i:i + window[0], j:j + window[1]], verbose=0)
    return out


@pytest.mark.parametrize("name, native, channels", [("lenet5", 32, 1), ("alexnet", 99, 3), ("vgg16", 64, 3)])
def test_native_size_output_equals_the_original(name, native, channels):
    model = logits_model(name, native, channels)
    fcn = keras_cnn.to_fcn(model)
    assert fcn.input_shape == (None, None, None, channels)
    x = images(2, native, channels)
    out = fcn.predict(x, verbose=0)
    assert out.shape == (2, 1, 1, 7)
    np.testing.assert_allclose(out[:, 0, 0], model.predict(x, verbose=0), atol=1e-5)
    assert not any(isinstance(layer, (keras.layers.Dense, keras.layers.Flatten)) for layer in fcn.layers)
    assert fcn.get_layer("fc6" if name != "lenet5" else "f6").kernel.shape[:2] == model.get_layer(
        "flatten").input.shape[1:3]


@pytest.mark.parametrize("name, native, steps", [("alexnet", 99, 2), ("vgg16", 64, 3)])
def test_larger_image_map_equals_head_on_each_feature_window(name, native, steps):
    """Exact check of the FC -> conv weight reshape (channels-last flatten order) on 2x2 windows."""
    model = logits_model(name, native)
    fcn = keras_cnn.to_fcn(model)
    stride = total_stride(model)
    assert stride == 32
    big = images(2, native + stride * steps)
    out = fcn.predict(big, verbose=0)
    assert out.shape == (2, steps + 1, steps + 1, 7)
    np.testing.assert_allclose(out, feature_window_reference(model, fcn, big), atol=1e-4, rtol=1e-4)


def test_lenet5_map_position_equals_the_model_on_the_image_window():
    """LeNet-5 pads nowhere, so each map position is exactly the original model on its 32x32 window."""
    model = logits_model("lenet5", 32, 1)
    fcn = keras_cnn.to_fcn(model)
    stride = total_stride(model)
    assert stride == 4
    big = images(1, 32 + 3 * stride, 1)
    out = fcn.predict(big, verbose=0)[0]
    assert out.shape == (4, 4, 7)
    windows = np.stack([big[0, i * stride:i * stride + 32, j * stride:j * stride + 32]
                        for i in range(4) for j in range(4)])
    np.testing.assert_allclose(out.reshape(16, 7), model.predict(windows, verbose=0), atol=1e-5)


def test_user_sequential_model_with_batch_norm_dropout_and_softmax():
    model = keras.Sequential([
        keras.Input((12, 10, 2)), keras.layers.Conv2D(5, 3, strides=2, activation="relu"),
        keras.layers.Flatten(), keras.layers.Dense(6), keras.layers.BatchNormalization(),
        keras.layers.ReLU(), keras.layers.Dropout(0.3), keras.layers.Dense(4, activation="softmax")])
    model.layers[3].set_weights([w + RNG.uniform(0.5, 1.5, w.shape).astype("float32")
                                 for w in model.layers[3].get_weights()])  # non-trivial BN statistics
    fcn = keras_cnn.to_fcn(model)
    x = RNG.uniform(size=(3, 12, 10, 2)).astype("float32")
    np.testing.assert_allclose(fcn.predict(x, verbose=0)[:, 0, 0], model.predict(x, verbose=0), atol=1e-5)
    probs = fcn.predict(RNG.uniform(size=(1, 20, 30, 2)).astype("float32"), verbose=0)
    assert probs.shape == (1, 5, 11, 4)  # conv 3/2: 9x14 map, 5x4 windows
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)  # softmax over channels per position
    assert [type(l).__name__ for l in fcn.layers[-5:]] == ["WindowConv2D", "BatchNormalization", "ReLU", "Dropout",
                                                           "Conv2D"]
    assert isinstance(fcn.layers[-5], keras.layers.Conv2D) and fcn.layers[-5].kernel.shape == (5, 4, 5, 6)


def test_window_conv_equals_conv2d_and_reloads(tmp_path):
    from keras_cnn.layers import WindowConv2D

    x = RNG.normal(size=(2, 9, 8, 3)).astype("float32")
    window = WindowConv2D(4, (3, 2), activation="relu", name="fc6")
    conv = keras.layers.Conv2D(4, (3, 2), activation="relu")
    conv.build(x.shape)
    window.build(x.shape)
    window.set_weights([w + RNG.normal(size=w.shape).astype("float32") for w in conv.get_weights()])
    conv.set_weights(window.get_weights())
    np.testing.assert_allclose(window(x), conv(x), rtol=1e-5, atol=1e-5)
    model = keras.Sequential([keras.Input((None, None, 3)), window])
    model.save(tmp_path / "w.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "w.keras", safe_mode=True)(x), model(x), atol=1e-6)
    with pytest.raises(ValueError, match="padding='valid'.*received padding='same'"):
        WindowConv2D(4, 3, padding="same")


def test_global_pooling_head_gives_class_score_maps():
    model = keras_cnn.build("nin", input_shape=(None, None, 3), classes=5, classifier_activation=None)
    fcn = keras_cnn.to_fcn(model)
    x = images(2, 80)
    maps = fcn.predict(x, verbose=0)
    assert maps.ndim == 4 and maps.shape[-1] == 5
    np.testing.assert_allclose(maps.mean(axis=(1, 2)), model.predict(x, verbose=0), atol=1e-5)
    inputs = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(8, 3)(inputs)
    out = keras.layers.Dense(3)(keras.layers.Dropout(0.2)(keras.layers.GlobalAveragePooling2D()(h)))
    gap = keras.Model(inputs, out)
    x16 = images(2, 16)
    np.testing.assert_allclose(keras_cnn.to_fcn(gap).predict(x16, verbose=0).mean(axis=(1, 2)),
                               gap.predict(x16, verbose=0), atol=1e-5)


def test_fcn_weights_are_copies():
    model = logits_model("lenet5", 32, 1)
    fcn = keras_cnn.to_fcn(model)
    fcn.get_layer("c1").kernel.assign(np.zeros(fcn.get_layer("c1").kernel.shape))
    assert np.any(model.get_layer("c1").kernel.numpy() != 0)


def test_dense_predict_at_native_scale_equals_predict_and_handles_mixed_sizes():
    model = keras_cnn.build("lenet5", input_shape=(32, 32, 1), classes=4)
    x = images(3, 32, 1)
    np.testing.assert_allclose(evaluation.dense_predict(model, x, scales=32, flip=False),
                               model.predict(x, verbose=0), atol=1e-5)
    mixed = [images(1, 40, 1)[0], RNG.uniform(size=(36, 50, 1)).astype("float32")]
    probs = evaluation.dense_predict(model, mixed, scales=(32, 48), reduce="max")
    assert probs.shape == (2, 4) and np.all(np.isfinite(probs))
    flipped = evaluation.dense_predict(model, x[:, :, ::-1], scales=32)
    np.testing.assert_allclose(flipped, evaluation.dense_predict(model, x, scales=32), atol=1e-5)
    both = (model.predict(x, verbose=0) + model.predict(x[:, :, ::-1], verbose=0)) / 2  # each image with its flip
    np.testing.assert_allclose(evaluation.dense_predict(model, x, scales=32, batch_size=2), both, atol=1e-5)
    np.testing.assert_allclose(evaluation.dense_predict(model, x, scales=32, jit_compile=True), both, atol=1e-5)


def test_multi_crop_predict_matches_explicit_crops():
    model = keras_cnn.build("lenet5", input_shape=(32, 32, 1), classes=4)
    image = images(1, 40, 1)[0]
    corners = [image[:32, :32], image[:32, 8:], image[8:, :32], image[8:, 8:], image[4:36, 4:36]]
    views = np.stack(corners + [c[:, ::-1] for c in corners])
    expected = model.predict(views, verbose=0).mean(axis=0)
    np.testing.assert_allclose(evaluation.multi_crop_predict(model, image[None], crops=10)[0], expected, atol=1e-6)
    np.testing.assert_allclose(evaluation.multi_crop_predict(model, image[None], crops=1)[0],
                               model.predict(image[None, 4:36, 4:36], verbose=0)[0], atol=1e-6)
    grid = evaluation.multi_crop_predict(model, [image, images(1, 33, 1)[0]], grid=3)
    assert grid.shape == (2, 4)
    several = [image, images(1, 33, 1)[0], images(1, 36, 1)[0]]  # crops of several images share small batches
    np.testing.assert_allclose(evaluation.multi_crop_predict(model, several, batch_size=2),
                               [evaluation.multi_crop_predict(model, [one])[0] for one in several], atol=1e-6)
    scaled = evaluation.multi_scale_predict(model, image[None], scales=(32, 40), crops=5)
    assert scaled.shape == (1, 4)
    both = evaluation.dense_and_crop_predict(model, image[None], scales=(32, 40))
    np.testing.assert_allclose(both.sum(axis=1), 1.0, rtol=1e-5)


