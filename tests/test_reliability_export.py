"""Exports say what they hold and refuse what they cannot be (issue #18, items 7, 8 and 10's int8 part).

* item 7: the output is named ``logits`` when the model has no softmax or sigmoid, in every runtime, and the
  readers (runners, ``keras-cnn predict``) follow the name;
* item 8: a quantized TFLite file that drifts from Keras (top-1 agreement below ``min_agreement`` on real
  verification images) is refused, naming the figure, unless the threshold is lowered;
* item 10: an int8 export of a model with a layer TFLite has no integer kernel for is refused before any
  conversion, naming the layer, and ``keras-cnn`` says so in one line.
"""

import json
import os
import re

import keras
import numpy as np
import onnxruntime
import pytest
import tensorflow as tf

import keras_cnn
from keras_cnn import _tflite, cli, data, export
from keras_cnn.app import predict, preprocessing, runners, sources
from keras_cnn.layers import LocalResponseNormalization

DIGITS = data.digits()


def lenet(activation="softmax"):
    keras.utils.set_random_seed(0)
    return keras_cnn.build("lenet5", classes=10, classifier_activation=activation)


@pytest.fixture(scope="module")
def trained():
    """One epoch on the digits: agreement with Keras means something only for a model that separates them."""
    model = lenet()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*DIGITS["train"], epochs=1, batch_size=64, verbose=0)
    return model


def write_pngs(folder, images):
    os.makedirs(folder)
    for index, image in enumerate(images):
        pixels = tf.cast(tf.round(image * 255), tf.uint8)
        tf.io.write_file(os.path.join(folder, f"{index}.png"), tf.io.encode_png(pixels))


# ---------------------------------------------------------------- item 7: the output named by what it is


def exported_output_names(model, folder):
    """The output name each runtime sees: SavedModel signature, LiteRT signature, onnxruntime session."""
    export.to_saved_model(model, folder / "sm")
    export.to_tflite(model, folder / "m.tflite")
    export.to_onnx(model, folder / "m.onnx")
    signature = tf.saved_model.load(str(folder / "sm" / "1")).signatures["serving_default"]
    interpreter, _ = _tflite.interpreter(folder / "m.tflite")
    sidecar = json.loads((folder / "m.tflite.json").read_text())
    session = onnxruntime.InferenceSession(str(folder / "m.onnx"), providers=["CPUExecutionProvider"])
    return {"savedmodel": list(signature.structured_outputs),
            "tflite": list(interpreter.get_signature_runner("serving_default").get_output_details()),
            "sidecar": [sidecar["output"]["name"]], "onnx": [o.name for o in session.get_outputs()]}


@pytest.mark.parametrize("activation, name", [(None, "logits"), ("softmax", "probabilities")])
def test_every_runtime_names_the_output_by_what_it_is(activation, name, tmp_path):
    names = exported_output_names(lenet(activation), tmp_path)
    assert names == {"savedmodel": [name], "tflite": [name], "sidecar": [name], "onnx": [name]}
    for path in (tmp_path / "sm", tmp_path / "m.tflite", tmp_path / "m.onnx"):
        runner = runners.load(path)
        assert runner.output == name and runner.predict(DIGITS["test"][0][:3]).shape == (3, 10)


def plain(layer):
    inputs = keras.Input((4,))
    return keras.Model(inputs, layer(keras.layers.Dense(5)(inputs)))


@pytest.mark.parametrize("model, name", [
    (lambda: plain(keras.layers.Dense(3, activation="softmax")), "probabilities"),
    (lambda: plain(keras.layers.Dense(3, activation="sigmoid")), "probabilities"),  # multi-label
    (lambda: plain(keras.layers.Dense(3, activation=keras.activations.softmax)), "probabilities"),
    (lambda: plain(keras.layers.Softmax()), "probabilities"),
    (lambda: plain(keras.layers.Activation("softmax")), "probabilities"),
    (lambda: plain(keras.layers.Dense(3)), "logits"),
    (lambda: plain(keras.layers.Dense(3, activation="linear")), "logits"),
    (lambda: keras_cnn.build("squeezenet1_1", input_shape=(32, 32, 3), classes=3, classifier_activation=None),
     "logits"),
    (lambda: keras_cnn.build("squeezenet1_1", input_shape=(32, 32, 3), classes=3), "probabilities"),
    (lambda: keras_cnn.build("lenet5", classifier_activation="sigmoid"), "probabilities"),
    (lambda: keras_cnn.build("lenet5", classifier_activation="linear"), "logits"),
], ids=["dense-softmax", "dense-sigmoid", "dense-softmax-fn", "softmax-layer", "activation-layer", "dense",
        "dense-linear", "squeezenet-none", "squeezenet", "lenet-sigmoid", "lenet-linear"])
def test_output_name_reads_the_classifier_activation(model, name):
    assert export.output_name(model()) == name


def test_a_reloaded_keras_cnn_model_keeps_its_output_name(tmp_path):
    lenet(None).save(tmp_path / "m.keras")
    assert export.output_name(runners.load_keras(str(tmp_path / "m.keras"))) == "logits"


def test_predict_shows_the_softmax_of_logits_and_says_so_once(tmp_path, capsys):
    model = lenet(None)
    images = DIGITS["test"][0][:5]
    write_pngs(tmp_path / "images", images)
    model.save(tmp_path / "m.keras")
    export.to_tflite(model, tmp_path / "m.tflite")
    export.to_onnx(model, tmp_path / "m.onnx")
    export.to_saved_model(model, tmp_path / "sm")
    logits = keras.ops.convert_to_numpy(model(images))
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    for path in ("m.keras", "m.tflite", "m.onnx", "sm"):
        got = predict.main(["--model", str(tmp_path / path), "--top-k", "10", str(tmp_path / "images")])
        assert capsys.readouterr().out.count("(softmax of logits)") == 1, path
        for index, file in enumerate(sorted(got, key=lambda f: int(os.path.basename(f)[:-4]))):
            probabilities = dict(got[file])
            assert sum(probabilities.values()) == pytest.approx(1, abs=1e-5)
            np.testing.assert_allclose([probabilities[str(c)] for c in range(10)], expected[index], atol=1e-4)


def test_evaluate_scores_the_softmax_of_logits_and_says_so(tmp_path, capsys):
    from keras_cnn import metrics
    from keras_cnn.app import evaluate

    model = lenet(None)
    export.to_onnx(model, tmp_path / "m.onnx")
    record = preprocessing.create((32, 32, 1), [str(c) for c in range(10)], data={"source": "digits"})
    preprocessing.save(record, tmp_path / "m.preprocessing.json")
    values = evaluate.main(["--model", str(tmp_path / "m.onnx"), "--limit", "50", "--report", "none",
                            "--plots", "none"])
    assert "the metrics score their softmax" in capsys.readouterr().out
    x, y = data.digits()["test"]
    logits = keras.ops.convert_to_numpy(model(x[:50]))
    softmax = np.exp(logits - logits.max(-1, keepdims=True))
    softmax /= softmax.sum(-1, keepdims=True)
    assert values["pr_auc_micro"] == pytest.approx(metrics.pr_auc(y[:50], softmax, task="multiclass",
                                                                  average="micro"), abs=1e-5)


def test_predict_shows_probabilities_of_a_softmax_model_unchanged(tmp_path, capsys):
    model = lenet()
    write_pngs(tmp_path / "images", DIGITS["test"][0][:2])
    export.to_tflite(model, tmp_path / "m.tflite")
    got = predict.main(["--model", str(tmp_path / "m.tflite"), "--top-k", "1", str(tmp_path / "images")])
    assert "softmax of logits" not in capsys.readouterr().out
    expected = keras.ops.convert_to_numpy(model(DIGITS["test"][0][:2])).max(-1)
    assert sorted(p for [(_, p)] in got.values()) == pytest.approx(sorted(expected), abs=1e-4)


# ---------------------------------------------------------------- item 8: quantized files must agree with Keras


def test_int8_drift_is_refused_with_the_figure_unless_the_threshold_is_lowered(trained, tmp_path):
    path = tmp_path / "m.tflite"
    off_range = DIGITS["train"][0] * 0.1  # calibrated on pixels 10x darker than the model sees: clipped ranges
    test = DIGITS["test"][0]
    with pytest.raises(export.ExportVerificationError) as excinfo:
        export.to_tflite(trained, path, quantization="int8", representative_data=off_range, verify_data=test)
    message = str(excinfo.value)
    agreed = int(message.split("top-1 class of ")[1].split()[0])
    figure = float(message.split("verification images (")[1].split(")")[0])
    assert figure == agreed / 200 < 0.9 and f"{agreed} of 200 verification images" in message
    assert "below min_agreement=0.98" in message
    assert "keras-cnn export --min-agreement" in message and isinstance(excinfo.value, ValueError)
    assert os.listdir(tmp_path) == []

    accepted = export.to_tflite(trained, path, quantization="int8", representative_data=off_range,
                                verify_data=test, min_agreement=0.5)
    assert accepted.top1_agreement == pytest.approx(figure, abs=1e-4) and accepted.images == 200
    sidecar = json.loads((tmp_path / "m.tflite.json").read_text())["verification"]
    assert sidecar["images"] == 200 and sidecar["min_agreement"] == 0.5
    # calibrated on the training images, the same model passes the default threshold
    good = export.to_tflite(trained, tmp_path / "good.tflite", quantization="int8",
                            representative_data=DIGITS["train"][0], verify_data=test)
    assert good.top1_agreement >= export.MIN_AGREEMENT and good.min_agreement == export.MIN_AGREEMENT


def test_onnx_int8_drift_is_refused_as_tflite_int8_is(trained, tmp_path):
    """onnxruntime's static int8 (QDQ) is held to the same agreement rule as the int8 .tflite file."""
    path, test = tmp_path / "m.onnx", DIGITS["test"][0]
    with pytest.raises(export.ExportVerificationError, match="int8 onnx export .* below min_agreement=0.98"):
        export.to_onnx(trained, path, quantization="int8", representative_data=DIGITS["train"][0] * 0.1,
                       verify_data=test)
    assert os.listdir(tmp_path) == []
    good = export.to_onnx(trained, path, quantization="int8", representative_data=DIGITS["train"][0],
                          verify_data=test)
    assert good.top1_agreement >= export.MIN_AGREEMENT and good.images == 200 and good.quantization == "int8"
    assert os.path.getsize(path) == good.size_bytes


@pytest.mark.parametrize("kwargs, fragment", [
    ({"quantization": "float16"}, "quantization must be one of None, 'int8'; received 'float16'"),
    ({"quantization": "int8"}, "quantization='int8' needs representative_data"),
    ({"min_agreement": 1.5}, "min_agreement must be <= 1; received 1.5"),
    ({"quantization": "int8", "representative_data": np.zeros((2, 5, 5, 1), "float32")},
     "representative_data must hold images of the model's input shape"),
])
def test_onnx_quantization_arguments_are_checked_before_converting(kwargs, fragment, tmp_path):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        export.to_onnx(lenet(), tmp_path / "m.onnx", **kwargs)
    assert os.listdir(tmp_path) == []


def test_agreement_on_noise_is_reported_not_required(trained, tmp_path):
    """Without verify_data the file is compared on 4 noise images, where agreement means nothing."""
    result = export.to_tflite(trained, tmp_path / "m.tflite", quantization="int8",
                              representative_data=DIGITS["train"][0] * 0.1)
    assert result.images == 4 and result.min_agreement is None


@pytest.mark.parametrize("value, error, fragment", [
    (1.5, ValueError, "min_agreement must be <= 1; received 1.5"),
    (-0.1, ValueError, "min_agreement must be >= 0; received -0.1"),
    ("0.9", TypeError, "min_agreement must be a number; received '0.9'"),
])
def test_min_agreement_is_checked_before_converting(value, error, fragment, tmp_path):
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        export.to_tflite(lenet(), tmp_path / "m.tflite", min_agreement=value)
    assert os.listdir(tmp_path) == []


def test_keras_cnn_export_verifies_quantized_files_on_the_test_split(tmp_path, capsys):
    """A random-weight model agrees with its int8 file on ~93% of the test digits: refused in one line; the
    flag accepts it, and the file was compared on 200 test images."""
    lenet().save(tmp_path / "m.keras")
    record = preprocessing.create((32, 32, 1), [str(i) for i in range(10)], model="lenet5",
                                  data=sources.parse("digits").to_json())
    preprocessing.save(record, tmp_path / "m.preprocessing.json")
    argv = ["export", "--from", str(tmp_path / "m.keras"), "--format", "tflite", "--quantization", "int8",
            "--samples", "64", "--output", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as excinfo:
        cli.main(argv)
    message = excinfo.value.code
    assert message.startswith("keras-cnn export: error: int8 tflite export of 'lenet5' agrees with Keras on the "
                              "top-1 class of ") and "\n" not in message
    assert " of 200 verification images (0." in message and "--min-agreement" in message
    assert not os.path.exists(tmp_path / "out" / "lenet5.int8.tflite")
    cli.main([*argv, "--min-agreement", "0.5"])
    sidecar = json.loads((tmp_path / "out" / "lenet5.int8.tflite.json").read_text())["verification"]
    assert sidecar["images"] == 200 and sidecar["min_agreement"] == 0.5 and sidecar["top1_agreement"] < 0.98


# ---------------------------------------------------------------- item 10: no integer kernel, refused up front


def no_conversion(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was written for conversion before the check")

    monkeypatch.setattr(export, "_write_saved_model", refuse)


@pytest.mark.parametrize("name, options, layer", [
    ("googlenet", {}, "pool1_norm1"),  # lrn defaults to True without batch norm
    ("vgg11_lrn", {}, "block1_lrn"),
    ("alexnet", {}, "lrn1"),
])
def test_int8_refuses_a_layer_without_an_integer_kernel_before_converting(name, options, layer, tmp_path,
                                                                           monkeypatch):
    size = keras_cnn.registry.get(name).min_input
    model = keras_cnn.build(name, input_shape=(size, size, 3), classes=3, **options)
    no_conversion(monkeypatch)
    images = np.zeros((2, size, size, 3), "float32")
    with pytest.raises(export.ExportVerificationError) as excinfo:
        export.to_tflite(model, tmp_path / "m.tflite", quantization="int8", representative_data=images)
    message = str(excinfo.value)
    assert f"cannot convert {name!r}: its layer {layer!r} (LocalResponseNormalization)" in message
    assert "LOCAL_RESPONSE_NORMALIZATION, which has no integer kernel" in message and "lrn=False" in message
    assert os.listdir(tmp_path) == []


def test_a_nested_layer_without_an_integer_kernel_is_found(tmp_path, monkeypatch):
    inputs = keras.Input((8, 8, 3))
    inner = keras.Sequential([keras.layers.Conv2D(4, 3), LocalResponseNormalization(name="norm")], name="block")
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inner(inputs)))
    model = keras.Model(inputs, outputs, name="nested")
    no_conversion(monkeypatch)
    with pytest.raises(ValueError, match="cannot convert 'nested': its layer 'norm'"):
        export.to_tflite(model, tmp_path / "m.tflite", quantization="int8",
                         representative_data=np.zeros((2, 8, 8, 3), "float32"))


def test_the_float_variants_of_the_same_layer_still_export(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = LocalResponseNormalization()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x)))
    for quantization in (None, "float16", "dynamic"):
        assert export.to_tflite(model, tmp_path / f"{quantization}.tflite", quantization=quantization).runtime


def test_keras_cnn_export_says_so_in_one_line(tmp_path, monkeypatch):
    no_conversion(monkeypatch)
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["export", "--model", "googlenet", "--classes", "3", "--image-size", "32", "--format", "tflite",
                  "--quantization", "int8", "--representative", "digits", "--samples", "8",
                  "--output", str(tmp_path)])
    message = excinfo.value.code
    assert message.startswith("keras-cnn export: error: quantization='int8' cannot convert 'googlenet': its "
                              "layer 'pool1_norm1' (LocalResponseNormalization)") and "\n" not in message
    assert os.listdir(tmp_path) == []
