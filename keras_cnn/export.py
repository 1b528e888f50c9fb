"""Export verified in the runtime that runs it: SavedModel (TF Serving), TFLite (LiteRT), ONNX (onnxruntime).

Every function writes into a temporary file or folder beside the target, loads the result in its runtime,
compares it with Keras on the same images and only then moves it into place, so a failure leaves nothing
half-written. The TFLite and ONNX files are converted from the same ``serving_default`` function as the
SavedModel, so all three expose one input ``image`` (dynamic batch) and one output ``probabilities``.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_cnn import _validate

QUANTIZATIONS = (None, "float16", "dynamic", "int8")
IO_DTYPES = ("float32", "int8", "uint8")
FLOAT_TOLERANCE = {None: 1e-4, "float16": 1e-2}  # atol and rtol against Keras; quantized files report instead
BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")


class ExportVerificationError(RuntimeError):
    """The exported file loaded but disagrees with Keras beyond the tolerance (nothing was written)."""


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What was written and how it compared with Keras on the verification images."""

    path: str
    format: str
    size_bytes: int
    max_abs_diff: float
    top1_agreement: float
    runtime: str
    quantization: str | None = None


def to_saved_model(model, directory, version=1, overwrite=False, *, verify_data=None):
    """Write ``directory/<version>/``, TF Serving's layout, with a ``serving_default`` signature.

    The signature maps ``image`` (float32, dynamic batch) to ``probabilities``. An existing version folder is
    never replaced unless ``overwrite=True``; the new folder is written under a temporary name, verified with
    ``tf.saved_model.load`` (within 1e-4 of Keras) and renamed at the end.
    """
    _check_model(model)
    version = _validate.check_int("version", version, minimum=1)
    _validate.check_bool("overwrite", overwrite)
    target = os.path.join(os.fspath(directory), str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(f"SavedModel version {target!r} exists; pass overwrite=True or another version.")
    os.makedirs(directory, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=directory)
    try:
        _write_saved_model(model, staging)
        images = _verification_images(model, verify_data)
        got = tf.saved_model.load(staging).signatures["serving_default"](image=tf.constant(images))
        result = _compare(model, images, got["probabilities"].numpy(), None, target, "savedmodel",
                          f"tensorflow {tf.__version__}")
        if os.path.exists(target):
            shutil.rmtree(target)
        os.replace(staging, target)
        return dataclasses.replace(result, size_bytes=_folder_size(target))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def to_tflite(model, path, quantization=None, representative_data=None, io_dtype="float32", *,
              class_names=None, preprocessing=None, num_calibration_samples=300, per_channel=True,
              verify_data=None):
    """Convert to a ``.tflite`` file, verified with LiteRT, plus a ``<path>.json`` sidecar and labels file.

    ``quantization``: None (float32), "float16", "dynamic" (int8 weights, float activations) or "int8" (full
    integer, built-in int8 operators only; needs ``representative_data``: an image array or a ``tf.data``
    dataset of images or ``(images, labels)``, of which ``num_calibration_samples`` are used). ``io_dtype``
    "int8"/"uint8" makes the int8 model's input and output integer too. The sidecar records the input size,
    I/O dtypes and quantization parameters, ``preprocessing`` (e.g. ``{"scale": 1/255}``) and ``class_names``,
    which are also written one per line to ``<stem>.labels.txt``. float32 agrees with Keras within 1e-4 and
    float16 within 1e-2, or nothing is written; an int8 file with Flex, custom or float compute ops is refused.
    ``per_channel=False`` quantizes each weight tensor with one scale instead of one per output channel: TFLite
    stores a float32 scale and an int64 zero point per channel for a kernel and again for its int32 bias, which
    is 7-20% of a small mobile model's int8 file; one scale saves that at some cost in accuracy (README, Export).
    """
    _check_model(model)
    _validate.check_choice("quantization", quantization, QUANTIZATIONS)
    _validate.check_choice("io_dtype", io_dtype, IO_DTYPES)
    if io_dtype != "float32" and quantization != "int8":
        raise ValueError(f"io_dtype={io_dtype!r} needs quantization='int8'; received quantization={quantization!r}.")
    if quantization == "int8" and representative_data is None:
        raise ValueError("quantization='int8' needs representative_data: an array or tf.data dataset of about "
                         f"{num_calibration_samples} training images to calibrate activation ranges; received None.")
    path = os.fspath(path)
    with tempfile.TemporaryDirectory() as staging:
        _write_saved_model(model, staging)
        converter = _converter(staging, quantization, representative_data, io_dtype, num_calibration_samples,
                               _validate.check_bool("per_channel", per_channel))
        flatbuffer = converter.convert()
        interpreter, runtime = _interpreter(flatbuffer)
        if quantization == "int8":
            _check_integer_only(interpreter)
        images = _verification_images(model, verify_data)
        result = _compare(model, images, _run_tflite(interpreter, images), quantization, path, "tflite", runtime)
        _replace_file(path, flatbuffer)
    sidecar = _tflite_sidecar(model, interpreter, result, preprocessing, class_names, path)
    _replace_file(f"{path}.json", json.dumps(sidecar, indent=2).encode())
    if class_names:
        _replace_file(_labels_path(path), ("\n".join(map(str, class_names)) + "\n").encode())
    return dataclasses.replace(result, size_bytes=len(flatbuffer))


def to_onnx(model, path, opset=17, *, verify_data=None):
    """Convert with tf2onnx (input ``image`` with a dynamic batch, output ``probabilities``).

    Verified with onnxruntime at batch 1 and batch N within 1e-4 of Keras before the file is moved into place.
    """
    import onnxruntime
    import tf2onnx

    _check_model(model)
    opset = _validate.check_int("opset", opset, minimum=13)
    path = os.fspath(path)
    function, signature = _serving_function(model)
    with _grouped_conv_as_one_node():
        proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset)
    data = proto.SerializeToString()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    images = _verification_images(model, verify_data)
    single = np.concatenate([session.run(["probabilities"], {"image": im[None]})[0] for im in images])
    batched = session.run(["probabilities"], {"image": images})[0]
    runtime = f"onnxruntime {onnxruntime.__version__}"
    _compare(model, images, single, None, path, "onnx", runtime)
    result = _compare(model, images, batched, None, path, "onnx", runtime)
    _replace_file(path, data)
    return dataclasses.replace(result, size_bytes=len(data))


@contextlib.contextmanager
def _grouped_conv_as_one_node():
    """Trace each grouped convolution as one ``Conv2D`` node, which tf2onnx maps to ONNX ``Conv(group=g)``.

    Keras's TensorFlow backend wraps a grouped convolution in an XLA-compiled function because TensorFlow's CPU
    kernel has no groups; tf2onnx cannot inline such a function and leaves a ``StatefulPartitionedCall`` node
    that onnxruntime rejects (ResNeXt, ShuffleNet v1). The traced graph is only converted, never run by
    TensorFlow, and onnxruntime then checks it against Keras.
    """
    from keras.src.backend.tensorflow import nn as backend_nn  # pinned keras 3.15; tests/test_export_all.py

    original = backend_nn.conv

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        if (data_format or keras.config.image_data_format()) != "channels_last" or len(inputs.shape) != 4 \
                or inputs.shape[-1] == kernel.shape[-2]:
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        return tf.nn.convolution(inputs, kernel, strides, padding.upper(), data_format="NHWC",
                                 dilations=dilation_rate)

    backend_nn.conv = conv
    try:
        yield
    finally:
        backend_nn.conv = original


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; received {type(model).__name__}.")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"export needs one image input and one output; {model.name!r} has {len(model.inputs)} "
                         f"and {len(model.outputs)} (strip auxiliary classifiers first).")
    if len(model.inputs[0].shape) != 4 or model.inputs[0].shape[-1] is None:
        raise ValueError(f"export needs an (batch, height, width, channels) input; received {model.inputs[0].shape}.")


def _serving_function(model):
    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name="image")
    function = tf.function(lambda image: {"probabilities": model(image, training=False)})
    return function, (spec,)


def _write_saved_model(model, directory):
    function, signature = _serving_function(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=function, input_signature=list(signature))
    archive.write_out(directory, verbose=False)


def _converter(saved_model, quantization, representative_data, io_dtype, samples, per_channel=True):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if quantization is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # the converter's only switch for per-tensor weights (TF 2.4 to 2.21); tests/test_export.py guards it
        converter._experimental_disable_per_channel = not per_channel
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        _validate.check_int("num_calibration_samples", samples, minimum=1)
        converter.representative_dataset = lambda: ([s] for s in _samples(representative_data, samples))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = getattr(tf, io_dtype)
    return converter


def _samples(data, limit):
    """Single images ``(1, H, W, C)`` float32 from an array or a dataset of images or (images, labels)."""
    if isinstance(data, tf.data.Dataset):
        data = (element[0] if isinstance(element, tuple) else element for element in data)
    elif isinstance(data, np.ndarray):
        data = [data]
    else:
        raise TypeError(f"representative_data must be an image array or a tf.data.Dataset; received "
                        f"{type(data).__name__}.")
    count = 0
    for batch in data:
        batch = np.asarray(batch, dtype="float32")
        for image in batch if batch.ndim == 4 else batch[None]:
            if count == limit:
                return
            count += 1
            yield image[None]


def _interpreter(flatbuffer):
    try:
        from ai_edge_litert import interpreter as litert

        resolver = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES  # inspect the ops as written
        interpreter = litert.Interpreter(model_content=flatbuffer, experimental_op_resolver_type=resolver)
        runtime = "ai_edge_litert"
    except ImportError:
        interpreter, runtime = tf.lite.Interpreter(model_content=flatbuffer), "tf.lite.Interpreter"
    interpreter.allocate_tensors()
    return interpreter, runtime


def _check_integer_only(interpreter):
    """Refuse Flex/custom operators and float tensors anywhere but the quantize/dequantize boundary ops."""
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    for op in interpreter._get_ops_details():
        name = op["op_name"]
        if name.startswith("Flex") or name in ("CUSTOM", "DELEGATE"):
            raise ExportVerificationError(f"int8 model contains the non-builtin operator {name!r}.")
        dtypes = {tensors[i]["dtype"] for i in (*op["inputs"], *op["outputs"]) if i >= 0}
        if name not in BOUNDARY_OPS and any(np.issubdtype(d, np.floating) for d in dtypes):
            raise ExportVerificationError(f"int8 model computes {name!r} in floating point; the model has an op "
                                          "TFLite cannot quantize.")


def _run_tflite(interpreter, images):
    runner = interpreter.get_signature_runner("serving_default")
    given, wanted = runner.get_input_details()["image"], runner.get_output_details()["probabilities"]
    outputs = []
    for image in images:
        out = runner(image=_quantize(image[None], given))["probabilities"]
        outputs.append(_dequantize(out, wanted))
    return np.concatenate(outputs)


def _quantize(x, details):
    scale, zero_point = details["quantization"]
    if not np.issubdtype(details["dtype"], np.integer):
        return x.astype(details["dtype"])
    info = np.iinfo(details["dtype"])
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(details["dtype"])


def _dequantize(y, details):
    scale, zero_point = details["quantization"]
    if not np.issubdtype(details["dtype"], np.integer):
        return y.astype("float32")
    return ((y.astype("float32") - zero_point) * scale).astype("float32")


def _verification_images(model, data):
    """Four images: from ``data`` if given, else seeded uniform noise in [0, 1)."""
    if data is not None:
        return np.concatenate(list(_samples(data, 4)))
    height, width, channels = (d or 32 for d in model.inputs[0].shape[1:])
    return np.random.default_rng(0).uniform(0, 1, (4, height, width, channels)).astype("float32")


def _compare(model, images, got, quantization, path, fmt, runtime):
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    diff = float(np.max(np.abs(expected - got)))
    agreement = float(np.mean(expected.argmax(-1) == got.argmax(-1)))
    tolerance = FLOAT_TOLERANCE.get(quantization)
    if tolerance is not None and not np.allclose(got, expected, atol=tolerance, rtol=tolerance):
        raise ExportVerificationError(f"{fmt} export of {model.name!r} differs from Keras by {diff:.3g} in "
                                      f"{runtime} (tolerance {tolerance}); nothing was written.")
    return ExportResult(os.fspath(path), fmt, 0, diff, agreement, runtime, quantization)


def _tflite_sidecar(model, interpreter, result, preprocessing, class_names, path):
    runner = interpreter.get_signature_runner("serving_default")
    io = {"input": runner.get_input_details()["image"], "output": runner.get_output_details()["probabilities"]}
    sidecar = {"model": model.name, "format": "tflite", "quantization": result.quantization,
               "preprocessing": preprocessing, "class_names": list(class_names) if class_names else None,
               "labels_file": os.path.basename(_labels_path(path)) if class_names else None,
               "verification": {"runtime": result.runtime, "max_abs_diff": result.max_abs_diff,
                                "top1_agreement": result.top1_agreement}}
    for key, details in io.items():
        scale, zero_point = details["quantization"]
        sidecar[key] = {"name": "image" if key == "input" else "probabilities",
                        "shape": [int(d) for d in details["shape_signature"]],
                        "dtype": np.dtype(details["dtype"]).name,
                        "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None}
    return sidecar


def _labels_path(path):
    return f"{os.path.splitext(path)[0]}.labels.txt"


def _replace_file(path, data):
    """Write ``data`` to a temporary file in the same folder, then rename it over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(staging, path)
    except BaseException:
        os.unlink(staging)
        raise


def _folder_size(folder):
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(folder) for f in files)
