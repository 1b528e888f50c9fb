"""Exports verified in their runtimes: SavedModel (TF Serving layout), TFLite on LiteRT, ONNX on onnxruntime."""

import json
import os

import keras
import numpy as np
import onnxruntime
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_cnn
from keras_cnn import _compat, data, export
from keras_cnn.layers import LocalResponseNormalization

DIGITS = data.digits()
CLASSES = [f"digit_{i}" for i in range(10)]


@pytest.fixture(scope="module")
def lenet():
    """Briefly trained: an untrained net's near-uniform probabilities make top-1 agreement a coin toss."""
    keras.utils.set_random_seed(0)
    model = keras_cnn.build("lenet5", classes=10)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*DIGITS["train"], epochs=2, batch_size=64, verbose=0)
    return model


def test_saved_model_layout_signature_and_dynamic_batch(lenet, tmp_path):
    result = export.to_saved_model(lenet, tmp_path / "lenet5")
    assert result.path == str(tmp_path / "lenet5" / "1") and os.listdir(tmp_path / "lenet5") == ["1"]
    assert os.path.isfile(tmp_path / "lenet5" / "1" / "saved_model.pb") and result.max_abs_diff <= 1e-4
    signature = tf.saved_model.load(result.path).signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["image"]
    assert signature.structured_input_signature[1]["image"].shape.as_list() == [None, 32, 32, 1]
    images = DIGITS["test"][0][:5]
    np.testing.assert_allclose(signature(image=tf.constant(images))["probabilities"].numpy(),
                               lenet.predict(images, verbose=0), atol=1e-5)


@pytest.mark.parametrize("quantization, tolerance", [(None, 1e-4), ("float16", 1e-2), ("dynamic", 5e-2)])
def test_tflite_float_modes_agree_and_write_sidecar_and_labels(lenet, tmp_path, quantization, tolerance):
    path = tmp_path / "lenet5.tflite"
    images = DIGITS["test"][0][:8]
    result = export.to_tflite(lenet, path, quantization=quantization, class_names=CLASSES,
                              preprocessing={"scale": 1 / 16}, verify_data=images)
    assert result.max_abs_diff <= tolerance and result.runtime == "ai_edge_litert"
    sidecar = json.loads((tmp_path / "lenet5.tflite.json").read_text())
    assert sidecar["input"] == {"name": "image", "shape": [-1, 32, 32, 1], "dtype": "float32", "quantization": None}
    assert sidecar["output"]["name"] == "probabilities" and sidecar["output"]["shape"] == [-1, 10]
    assert sidecar["preprocessing"] == {"scale": 1 / 16} and sidecar["quantization"] == quantization
    assert (tmp_path / "lenet5.labels.txt").read_text().split() == CLASSES
    runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    got = runner(image=images[:1])["probabilities"]
    np.testing.assert_allclose(got, lenet.predict(images[:1], verbose=0), atol=tolerance)
    float_size = os.path.getsize(path)
    assert float_size == result.size_bytes


@pytest.mark.parametrize("io_dtype", ["float32", "int8", "uint8"])
def test_tflite_int8_is_integer_only_and_records_quantization(lenet, tmp_path, io_dtype):
    path = tmp_path / "lenet5_int8.tflite"
    result = export.to_tflite(lenet, path, quantization="int8", representative_data=DIGITS["train"][0],
                              io_dtype=io_dtype, verify_data=DIGITS["test"][0][:32])
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in _compat.tflite_ops(interpreter)}
    assert "CONV_2D" in ops and not any(op.startswith("Flex") for op in ops)
    sidecar = json.loads(path.with_suffix(".tflite.json").read_text())
    assert sidecar["input"]["dtype"] == io_dtype
    if io_dtype == "float32":
        assert ops >= {"QUANTIZE", "DEQUANTIZE"} and sidecar["input"]["quantization"] is None
    else:
        assert sidecar["input"]["quantization"]["scale"] == pytest.approx(1 / 255, rel=1e-3)
    assert result.top1_agreement >= 31 / 32 and result.max_abs_diff < 0.05  # one near-tie may flip


def test_int8_refuses_an_op_tflite_cannot_quantize(tmp_path):
    inputs = keras.Input((16, 16, 3))  # AlexNet's LRN has no int8 kernel in TFLite
    x = LocalResponseNormalization()(keras.layers.Conv2D(8, 3, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x)))
    images = np.random.default_rng(0).uniform(size=(8, 16, 16, 3)).astype("float32")
    with pytest.raises(export.ExportVerificationError, match="LOCAL_RESPONSE_NORMALIZATION"):
        export.to_tflite(model, tmp_path / "a.tflite", quantization="int8", representative_data=images)
    assert os.listdir(tmp_path) == []


def test_representative_data_from_a_dataset(lenet, tmp_path):
    ds = tf.data.Dataset.from_tensor_slices(DIGITS["train"]).batch(32)
    result = export.to_tflite(lenet, tmp_path / "m.tflite", quantization="int8", representative_data=ds,
                              num_calibration_samples=64)
    assert result.quantization == "int8"


def test_onnx_dynamic_batch_and_names(lenet, tmp_path):
    result = export.to_onnx(lenet, tmp_path / "lenet5.onnx")
    session = onnxruntime.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    assert not isinstance(session.get_inputs()[0].shape[0], int)  # symbolic batch dimension
    images = DIGITS["test"][0][:7]
    np.testing.assert_allclose(session.run(None, {"image": images})[0], lenet.predict(images, verbose=0), atol=1e-5)


def _largest_scale_vector(path):
    details = Interpreter(model_path=str(path)).get_tensor_details()
    return max(len(d["quantization_parameters"]["scales"]) for d in details)


def test_int8_per_tensor_option_uses_one_scale_per_weight_and_is_smaller(lenet, tmp_path):
    kwargs = {"quantization": "int8", "representative_data": DIGITS["train"][0], "verify_data": DIGITS["test"][0][:32]}
    per_channel = export.to_tflite(lenet, tmp_path / "pc.tflite", **kwargs)
    per_tensor = export.to_tflite(lenet, tmp_path / "pt.tflite", per_channel=False, **kwargs)
    assert _largest_scale_vector(per_channel.path) == 120  # C5: one scale per output channel
    assert _largest_scale_vector(per_tensor.path) == 1
    assert per_tensor.size_bytes < per_channel.size_bytes and per_tensor.top1_agreement >= 31 / 32


def test_onnx_conversion_collects_before_every_optimizer_pass_and_restores_gc(lenet, tmp_path):
    """tf2onnx deep-copies the graph before each optimizer pass; without a collection in between the copies
    pile up (ResNeXt-101 32x8d passed 24 GB; bench/bench_export_memory.py). A caller's gc.freeze is kept."""
    import gc

    from tf2onnx import optimizer

    table, full_collections = optimizer._optimizers, []
    callback = lambda phase, info: full_collections.append(1) if phase == "stop" and info["generation"] == 2 \
        else None  # noqa: E731
    gc.callbacks.append(callback)
    gc.freeze()
    try:
        export.to_onnx(lenet, tmp_path / "lenet5.onnx")
        assert gc.get_freeze_count() > 0  # still frozen (the count drops only by frozen objects freed since)
    finally:
        gc.callbacks.remove(callback)
        gc.unfreeze()
    # at least two rounds over every optimizer (the first changes the graph, so tf2onnx runs another)
    assert len(full_collections) >= 2 * len(table)
    assert optimizer._optimizers is table
    export.to_onnx(lenet, tmp_path / "again.onnx")
    assert gc.get_freeze_count() == 0


def test_exports_are_readable_by_other_users_under_the_umask(lenet, tmp_path):
    """Issue #18: staged with mkstemp/mkdtemp (0600/0700), exports were unreadable by a serving user; they get the
    mode of a normally written file under the umask (0644 / 0755 under umask 022)."""
    previous = os.umask(0o022)
    try:
        saved = export.to_saved_model(lenet, tmp_path / "lenet5")
        tflite = export.to_tflite(lenet, tmp_path / "lenet5.tflite", class_names=CLASSES)
        onnx = export.to_onnx(lenet, tmp_path / "lenet5.onnx")
    finally:
        os.umask(previous)
    assert os.stat(saved.path).st_mode & 0o777 == 0o755
    for path in (tflite.path, onnx.path, tmp_path / "lenet5.tflite.json", tmp_path / "lenet5.labels.txt"):
        assert os.stat(path).st_mode & 0o777 == 0o644, path


@pytest.mark.parametrize("bad", ["cat\ndog", "tab\there", "line\u2028sep", 7])
def test_class_names_that_would_shift_the_labels_file_are_refused(lenet, tmp_path, bad):
    """Issue #18: a newline in a class name (a folder name can hold one) shifted every later label in labels.txt."""
    names = [*CLASSES[:-1], bad]
    with pytest.raises(ValueError, match=r"class_names\[9\] must be a string without control or line-break "
                                         r"characters"):
        export.to_tflite(lenet, tmp_path / "lenet5.tflite", class_names=names)
    assert not os.listdir(tmp_path)
