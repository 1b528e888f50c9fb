"""LiteRT metadata embedded in the .tflite files (MediaPipe's writer, the tflite-support schema), read back by
MediaPipe's MetadataDisplayer and ImageClassifier, and the uint8 input pinned to what 8-bit pixels mean."""

import json
import warnings

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import _tflite, _tflite_metadata, data, export

NAMES = [f"digit_{i}" for i in range(10)]
UNIT = {"scale": 1 / 255, "offset": 0.0}  # 8-bit pixels to the model's [0, 1]


def _trained(channels, activation="softmax"):
    digits = data.digits(channels=channels)
    keras.utils.set_random_seed(0)
    model = keras_cnn.build("lenet5", classes=10, input_shape=(32, 32, channels), classifier_activation=activation)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=activation is None))
    model.fit(*digits["train"], epochs=2, batch_size=64, verbose=0)
    return model, digits


@pytest.fixture(scope="module")
def grey():
    return _trained(1)


@pytest.fixture(scope="module")
def rgb():
    """MediaPipe's ImageClassifier takes RGB models only ("Only RGB color space is supported for now")."""
    return _trained(3)


def _mediapipe():
    pytest.importorskip("mediapipe")
    assert _tflite_metadata.writer_modules() is not None


def _displayer(path):
    metadata = _tflite_metadata.writer_modules()[0]
    return metadata.MetadataDisplayer.with_model_file(str(path))


def _export(model, digits, path, quantization=None, io_dtype="float32", calibration=1.0, **options):
    return export.to_tflite(model, path, quantization=quantization, io_dtype=io_dtype,
                            representative_data=digits["train"][0] * calibration if quantization == "int8" else None,
                            verify_data=digits["test"][0][:64], **options)


def test_metadata_reads_back_name_normalisation_and_labels(grey, tmp_path):
    _mediapipe()
    model, digits = grey
    path = tmp_path / "lenet5.tflite"
    _export(model, digits, path, class_names=NAMES, preprocessing=UNIT)
    displayer = _displayer(path)
    found = json.loads(displayer.get_metadata_json())
    assert found["name"] == model.name and found["version"] == keras_cnn.__version__
    assert "float32" in found["description"] and found["min_parser_version"] == "1.0.0"
    image = found["subgraph_metadata"][0]["input_tensor_metadata"][0]
    assert image["content"]["content_properties"]["color_space"] == "GRAYSCALE"
    assert image["process_units"][0]["options"] == {"mean": [0.0], "std": [255.0]}
    scores = found["subgraph_metadata"][0]["output_tensor_metadata"][0]
    assert scores["name"] == "probabilities" and "softmax" in scores["description"]
    assert scores["associated_files"][0]["type"] == "TENSOR_AXIS_LABELS"
    assert displayer.get_associated_file_buffer("labels.txt").decode().split("\n") == NAMES
    assert (tmp_path / "lenet5.labels.txt").read_text().split() == NAMES  # the sidecar's files stay
    assert json.loads((tmp_path / "lenet5.tflite.json").read_text())["class_names"] == NAMES


@pytest.mark.parametrize("quantization, io_dtype, tolerance", [(None, "float32", 1e-5), ("int8", "float32", 1e-6),
                                                               ("int8", "uint8", 1e-6)])
def test_image_classifier_agrees_with_our_runner(rgb, tmp_path, quantization, io_dtype, tolerance):
    """MediaPipe resizes to the input size (here already 32x32) and, for a float input, normalises each byte with
    the metadata's mean and std; a uint8 input gets the bytes. Same top class and score as keras_cnn's runner
    on the same 8-bit digits."""
    _mediapipe()
    import mediapipe as mp
    from mediapipe.tasks.python.core import base_options
    from mediapipe.tasks.python.vision import image_classifier

    model, digits = rgb
    path = tmp_path / "m.tflite"
    _export(model, digits, path, quantization, io_dtype, class_names=NAMES, preprocessing=UNIT)
    pixels = np.round(digits["test"][0][:6] * 255).astype("uint8")
    expected = _tflite.predict(_tflite.interpreter(path)[0], pixels.astype("float32") / 255)
    options = image_classifier.ImageClassifierOptions(
        base_options=base_options.BaseOptions(model_asset_path=str(path)), max_results=1)
    with image_classifier.ImageClassifier.create_from_options(options) as classifier:
        for image, scores in zip(pixels, expected):
            top = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=image)) \
                .classifications[0].categories[0]
            assert (top.index, top.category_name) == (scores.argmax(), NAMES[scores.argmax()])
            assert top.score == pytest.approx(scores.max(), abs=tolerance)


@pytest.mark.parametrize("quantization", [None, "int8"])
def test_metadata_leaves_litert_outputs_unchanged(grey, tmp_path, monkeypatch, quantization):
    _mediapipe()
    model, digits = grey
    with_metadata, without = tmp_path / "a.tflite", tmp_path / "b.tflite"
    _export(model, digits, with_metadata, quantization, class_names=NAMES, preprocessing=UNIT)
    monkeypatch.setattr(_tflite_metadata, "writer_modules", lambda: None)
    monkeypatch.setattr(_tflite_metadata, "_warned", False)
    with pytest.warns(_tflite_metadata.MetadataWarning, match="no embedded metadata"):
        _export(model, digits, without, quantization, class_names=NAMES, preprocessing=UNIT)
    assert with_metadata.stat().st_size > without.stat().st_size
    images = digits["test"][0][:16]
    np.testing.assert_array_equal(_tflite.predict(_tflite.interpreter(with_metadata)[0], images),
                                  _tflite.predict(_tflite.interpreter(without)[0], images))


def test_without_mediapipe_the_file_is_written_and_the_warning_comes_once(grey, tmp_path, monkeypatch):
    model, digits = grey
    monkeypatch.setattr(_tflite_metadata, "writer_modules", lambda: None)
    monkeypatch.setattr(_tflite_metadata, "_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("a", "b"):
            _export(model, digits, tmp_path / f"{name}.tflite", class_names=NAMES, preprocessing=UNIT)
    assert [type(w.message) for w in caught] == [_tflite_metadata.MetadataWarning]
    assert caught[0].filename == __file__  # the caller's line, not keras_cnn's
    assert json.loads((tmp_path / "b.tflite.json").read_text())["class_names"] == NAMES


def test_uint8_input_scale_is_exactly_one_255th_for_a_unit_range_model(grey, tmp_path):
    """Calibration images spanning [0, 0.9] gave the uint8 input scale 0.9/255 (bytes above 229 clipped); a model
    whose range is [0, 1] now takes the bytes unchanged: scale float32(1/255), zero point 0."""
    model, digits = grey
    path = tmp_path / "u.tflite"
    result = _export(model, digits, path, "int8", "uint8", calibration=0.9, preprocessing=UNIT)
    given, _ = _tflite.io_details(_tflite.interpreter(path)[0])
    assert given["quantization"] == (np.float32(1 / 255), 0)
    assert json.loads((tmp_path / "u.tflite.json").read_text())["input"]["quantization"] == \
        {"scale": float(np.float32(1 / 255)), "zero_point": 0}
    assert result.top1_agreement >= 0.98
    runner = _tflite.interpreter(path)[0].get_signature_runner("serving_default")
    white, black = (runner(image=np.full((1, 32, 32, 1), v, "uint8"))["probabilities"] for v in (255, 0))
    assert not np.array_equal(white, black)


def test_unpinned_uint8_input_without_a_known_range(grey, tmp_path):
    model, digits = grey  # no preprocessing: the range is unknown, the calibrated scale stays
    _export(model, digits, tmp_path / "u.tflite", "int8", "uint8", calibration=0.9)
    given, _ = _tflite.io_details(_tflite.interpreter(tmp_path / "u.tflite")[0])
    assert given["quantization"][0] == pytest.approx(0.9 / 255, rel=1e-3)
    _export(model, digits, tmp_path / "f.tflite")  # a float input is never pinned
    assert _tflite.pin_input_quantization((tmp_path / "f.tflite").read_bytes(), 1 / 255, 0) is None
    assert export._pixel_quantization({"scale": 2 / 255, "offset": -1.0}) is None  # zero point 127.5
    assert export._pixel_quantization({"scale": 1 / 255}) == (1 / 255, 0)


@pytest.mark.parametrize("io_dtype, mean, std", [("uint8", [0.0], [1.0]), ("int8", [128.0], [1.0])])
def test_integer_input_normalisation_maps_bytes_to_the_file_input(grey, tmp_path, io_dtype, mean, std):
    _mediapipe()
    model, digits = grey
    path = tmp_path / "q.tflite"
    _export(model, digits, path, "int8", io_dtype, class_names=NAMES, preprocessing=UNIT)
    found = json.loads(_displayer(path).get_metadata_json())
    options = found["subgraph_metadata"][0]["input_tensor_metadata"][0]["process_units"][0]["options"]
    np.testing.assert_allclose(options["mean"], mean, atol=1e-3)
    np.testing.assert_allclose(options["std"], std, rtol=1e-6)


def test_normalisation_per_channel_and_logits_output():
    class Tensor:  # what normalization() reads of a float input
        def Quantization(self):
            return None

    transform = {"scale": [1 / (255 * 0.229), 1 / (255 * 0.224)], "offset": [-0.485 / 0.229, -0.456 / 0.224]}
    mean, std = _tflite_metadata.normalization(transform, Tensor())
    np.testing.assert_allclose(mean, [0.485 * 255, 0.456 * 255], rtol=1e-6)
    np.testing.assert_allclose(std, [0.229 * 255, 0.224 * 255], rtol=1e-6)
    assert _tflite_metadata.normalization({"scale": 1 / 16}, Tensor()) == ([0.0], [16.0])
    assert _tflite_metadata.normalization(None, Tensor()) is None
    assert _tflite_metadata.normalization({"mean": 1}, Tensor()) is None
    assert "logits" in _tflite_metadata.output_description("logits", "linear")["description"]
    assert "sigmoid" in _tflite_metadata.output_description("probabilities", "sigmoid")["description"]


def test_logits_model_says_so(tmp_path):
    _mediapipe()
    model, digits = _trained(1, activation=None)
    _export(model, digits, tmp_path / "l.tflite", preprocessing=UNIT)
    found = json.loads(_displayer(tmp_path / "l.tflite").get_metadata_json())
    scores = found["subgraph_metadata"][0]["output_tensor_metadata"][0]
    assert scores["name"] == "logits" and "no softmax" in scores["description"]


def test_minimum_parser_version_follows_the_schema_rule():
    _mediapipe()
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    def version(**subgraph_fields):
        subgraph = fb.SubGraphMetadataT()
        for key, value in subgraph_fields.items():
            setattr(subgraph, key, value)
        root = fb.ModelMetadataT()
        root.subgraphMetadata = [subgraph]
        builder = flatbuffers.Builder(0)
        builder.Finish(root.Pack(builder), b"M001")
        return _tflite_metadata.minimum_parser_version(builder.Output())

    vocabulary = fb.AssociatedFileT()
    vocabulary.name, vocabulary.type = "v.txt", fb.AssociatedFileType.VOCABULARY
    labels = fb.AssociatedFileT()
    labels.name, labels.type = "l.txt", fb.AssociatedFileType.TENSOR_AXIS_LABELS
    assert version(associatedFiles=[labels]) == "1.0.0"
    assert version(associatedFiles=[vocabulary]) == "1.0.1"
    assert version(inputProcessUnits=[]) == "1.1.0"
    assert version(outputTensorGroups=[], associatedFiles=[vocabulary]) == "1.2.0"
    assert version(customMetadata=[]) == "1.5.0"
