"""One piece of code per concern: the paths that share a helper agree on what it decides.

int8 quantisation: export verification and the apps' runner feed LiteRT the same integers, by TFLite's own rule
(``keras_cnn._tflite``). Images: ``keras_cnn.data``, ``keras_cnn.app.sources`` and ``keras-cnn predict`` decode a
file to the same pixels with the same channel rule, and one parser reads the data-source strings
(``keras_cnn._images``, ``keras_cnn.data.parse_source``).
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnn import _images, _tflite, data, export
from keras_cnn.app import predict, preprocessing, runners, sources

# ---------------------------------------------------------------- int8 quantisation


def _tflite_rule(values, zero_point, low=-128, high=127):
    """TFLite's AffineQuantize: round(x / scale), halves away from zero (std::round), + zero point, clamped."""
    return np.clip(np.sign(values) * np.floor(np.abs(values) + 0.5) + zero_point, low, high).astype(int)


@pytest.mark.parametrize("dtype, zero_point", [("int8", -1), ("int8", 0), ("uint8", 128), ("uint8", 3)])
def test_quantize_rounds_halves_away_from_zero_then_adds_the_zero_point_and_clamps(dtype, zero_point):
    scale = 1 / 256  # a power of two: x / scale is exactly k + 0.5
    k = np.arange(-300, 300)
    details = {"dtype": np.dtype(dtype), "quantization": (scale, zero_point)}
    got = _tflite.quantize(((k + 0.5) * scale).astype("float32"), details)
    info = np.iinfo(dtype)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, _tflite_rule(k + 0.5, zero_point, info.min, info.max))
    assert _tflite.quantize(np.float32([2.5 * scale, -2.5 * scale]), details).tolist() == \
        np.clip([3 + zero_point, -3 + zero_point], info.min, info.max).tolist()
    np.testing.assert_allclose(_tflite.dequantize(got, details), (got.astype("float32") - zero_point) * scale)
    floats = {"dtype": np.dtype("float32"), "quantization": (0.0, 0)}
    assert _tflite.quantize(np.float64([0.5]), floats).dtype == np.float32


def test_export_verification_and_the_runner_feed_litert_the_same_integers(tmp_path, monkeypatch):
    """Calibrated on [-127/256, 128/256], the int8 input has scale 1/256 and the odd zero point -1, where
    ``round(x / scale + zp)`` and ``round(x / scale) + zp`` with NumPy's round-half-to-even disagree."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    seen = []
    call = litert.SignatureRunner.__call__

    def recording(self, **inputs):
        seen.append(np.array(inputs[_tflite.INPUT]))
        return call(self, **inputs)

    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs)))
    calibration = np.linspace(-127 / 256, 128 / 256, 8 * 16, dtype="float32").reshape(8, 4, 4, 1)
    k = np.arange(-32, 32).reshape(4, 4, 4, 1)  # x / scale = k + 0.5 for 32 negative and 32 positive k
    images = ((k + 0.5) / 256).astype("float32")
    monkeypatch.setattr(litert.SignatureRunner, "__call__", recording)

    result = export.to_tflite(model, tmp_path / "m.tflite", quantization="int8", representative_data=calibration,
                              io_dtype="int8", verify_data=images, min_agreement=0)  # near-ties: integers are the point
    from_export, seen[:] = np.concatenate(seen), []
    runners.load(result.path).predict(images)
    from_runner = np.concatenate(seen)

    given, _ = _tflite.io_details(_tflite.interpreter(result.path)[0])
    assert given["quantization"] == (1 / 256, -1)
    expected = np.where(k >= 0, k + 1, k) - 1  # k + 0.5 rounds away from zero, then the zero point
    assert from_export.dtype == from_runner.dtype == np.int8
    np.testing.assert_array_equal(from_export, expected)
    np.testing.assert_array_equal(from_runner, expected)
    # the two rules the paths used before disagree here, and neither is TFLite's
    assert np.any(np.round(k + 0.5 - 1) != expected) and np.any(np.round(k + 0.5) - 1 != expected)


# ---------------------------------------------------------------- images and data sources

PIXELS = np.random.default_rng(0).integers(0, 256, (4, 6, 5, 4), dtype=np.uint8)  # 4 images, H=6, W=5, RGBA


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory):
    """Four images in each of three classes by colour type (grey, RGB with a JPEG among them, RGBA PNGs) and a
    corrupt file: enough for the stratified split of a folder source."""
    root = tmp_path_factory.mktemp("images")
    for name, channels in (("grey", 1), ("rgb", 3), ("rgba", 4)):
        os.makedirs(root / name)
        for index, pixels in enumerate(PIXELS[..., :channels]):
            jpeg = name == "rgb" and index == 3
            encoded = tf.io.encode_jpeg(pixels) if jpeg else tf.io.encode_png(pixels)
            (root / name / f"{index}.{'jpg' if jpeg else 'png'}").write_bytes(encoded.numpy())
    (root / "grey" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def test_decode_image_channel_rule():
    pixels = PIXELS[0]
    rgb = pixels[..., :3].astype("float32") / 255
    luma = tf.image.rgb_to_grayscale(rgb).numpy()
    grey = pixels[..., :1].astype("float32") / 255
    for array, channels, expected in [(pixels[..., :3], 1, luma), (pixels, 1, luma), (pixels, 3, rgb),
                                      (pixels[..., :1], 3, np.repeat(grey, 3, -1)),
                                      (pixels[..., :3], 4, np.concatenate([rgb, np.ones_like(grey)], -1))]:
        got = _images.to_unit_range(array, channels).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_data_sources_and_predict_decode_files_alike(image_tree, channels):
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        x, y, names = data.load_images(f"folder:{image_tree}", image_size=(6, 5), channels=channels)
        files = data.scan_folder(str(image_tree))[0]
        split = sources.load(sources.parse(f"folder:{image_tree}"), ("all",), size=(6, 5), channels=channels)["all"]
    from_sources = np.stack([image.numpy() for image, _ in split.dataset])
    record = preprocessing.create((6, 5, channels), names)  # normalisation "unit": the decoded pixels
    unreadable = []
    from_predict, _ = predict._read([*files, str(image_tree / "grey" / "broken.png")], record, unreadable)
    assert names == ["grey", "rgb", "rgba"] and y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert x.shape == (12, 6, 5, channels)
    np.testing.assert_allclose(from_sources, x, atol=1e-6)
    np.testing.assert_allclose(from_predict, x, atol=1e-6)
    assert [file for file, _ in unreadable] == [str(image_tree / "grey" / "broken.png")]
    # at the file's own size the resize changes nothing: the decoder alone gives the same pixels
    np.testing.assert_allclose(_images.decode_image(files[0], channels).numpy(), x[0], atol=1e-6)


@pytest.mark.parametrize("source, expected", [
    ("digits", ("digits", None, None)),
    ("folder:/data/a:b", ("folder", "/data/a:b", None)),
    ("folder:~/images", ("folder", os.path.expanduser("~/images"), None)),
    ("tfds:mnist", ("tfds", "mnist", None)),
    ("tfds:mnist:train[:80%]", ("tfds", "mnist", "train[:80%]")),
])
def test_parse_source_forms(source, expected):
    assert tuple(data.parse_source(source)) == expected
    assert sources.parse(source).parsed == data.parse_source(source)


@pytest.mark.parametrize("bad, error", [("digits:x", ValueError), ("folder:", ValueError), ("tfds", ValueError),
                                        ("csv:x", ValueError), (3, TypeError)])
def test_one_source_parser_one_message(bad, error):
    message = (f"must be 'digits', 'folder:PATH', 'tfds:NAME[:SPLIT]', or multi-label 'multilabel-digits' or "
               f"'listing:PATH' (a CSV/JSON listing, or a folder holding labels.csv or labels.json); received {bad!r}.")
    calls = {"source": lambda: data.load_images(bad, image_size=(8, 8), channels=1),
             "--data": lambda: sources.parse(bad),
             "--representative": lambda: sources.parse(bad, flag="--representative")}
    for name, call in calls.items():
        with pytest.raises(error) as raised:
            call()
        assert str(raised.value) == f"{name} {message}"
