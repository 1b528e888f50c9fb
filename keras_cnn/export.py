"""Export verified in the runtime that runs it: SavedModel (TF Serving), TFLite (LiteRT), ONNX (onnxruntime).

Every function stages its files in a hidden folder beside the target (:mod:`keras_cnn._files`), loads the result
in its runtime, compares it with Keras on the same images and only then publishes it, so a failure leaves
nothing half-written (no file, no new folder); an existing export is replaced only with ``overwrite=True``. Calls
inside ``with publish_together(folder):`` publish all their files together at the end of the block, under a
lock that makes a concurrent export into the folder wait (``keras-cnn export`` does this). The TFLite
and ONNX files are converted from the same ``serving_default`` function as the SavedModel, so all three expose
one input ``image`` (dynamic batch) and one output, named by what it is (:func:`output_name`): ``probabilities``
(softmax or sigmoid classifier) or ``logits``.

A multi-label model (a sigmoid classifier, whose per-class decision thresholds ``keras_cnn.thresholds.attach``
stored in it) is exported with them: its SavedModel gains a ``serving_labels`` signature (``probabilities`` and
``labels``, 1 where a probability reaches its class's threshold) and ``assets.extra/keras_cnn.json``, its TFLite
sidecar and its ONNX metadata say that the output is independent per-class probabilities and hold the
thresholds, and quantized files must agree with Keras on each image's whole label set instead of the top-1 class.

(Over 350 lines on purpose: the three formats share the staging, verification and all-or-nothing writing kept
here; the runtimes are in :mod:`keras_cnn._tflite` and :mod:`keras_cnn._onnx_convert`.)
"""

import dataclasses
import json
import os
import tempfile
import unicodedata

import keras
import numpy as np
import tensorflow as tf

from keras_cnn import _compat, _files, _onnx_convert, _tflite, _validate
from keras_cnn.model import has_config, int8_form, model_config

QUANTIZATIONS = (None, "float16", "dynamic", "int8")
ONNX_QUANTIZATIONS = (None, "int8")  # onnxruntime's static QDQ quantization (keras_cnn._onnx_int8)
IO_DTYPES = ("float32", "int8", "uint8")
FLOAT_TOLERANCE = {None: 1e-4, "float16": 1e-2}  # atol and rtol against Keras; quantized files report instead
BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")
PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")  # classifier activations whose output is named "probabilities"
# Quantized files (dynamic, int8) must agree with Keras on the top-1 class of at least MIN_AGREEMENT of the
# verify_data images (up to AGREEMENT_IMAGES of them); float files are held to FLOAT_TOLERANCE on VERIFY_IMAGES.
# 0.98 sits below what trained models reach (lenet5 on digits 0.997, the mobile family 0.983-1.000: README,
# Export) and far above a broken calibration (lenet5 calibrated on a pixel range 10x off: 0.62).
CHECKED_AGREEMENT = ("dynamic", "int8")
MIN_AGREEMENT = 0.98
AGREEMENT_IMAGES = 200
VERIFY_IMAGES = 4
# Layer class -> (the TFLite operator it becomes, which has no integer kernel; the way out). An int8 export of a
# model holding one is refused before converting. Found by converting one model of every family with each of
# its layer options (README, Export).
NO_INT8_KERNEL = {
    "LocalResponseNormalization": ("LOCAL_RESPONSE_NORMALIZATION", "build it with lrn=False (AlexNet, GoogLeNet "
                                   "without batch norm) or use vgg11 instead of vgg11_lrn"),
}


class ExportVerificationError(RuntimeError, ValueError):
    """The exported file disagrees with Keras beyond the tolerance or agreement required, or cannot be what was
    asked (an int8 file computing in float, or a model with a layer that has no integer kernel); nothing was
    written. A ``ValueError`` too, so ``keras-cnn`` reports it in one line like any other refused argument."""


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
    images: int = VERIFY_IMAGES  # verification images compared (quantized TFLite with verify_data: up to 200)
    min_agreement: float | None = None  # the top-1 agreement required (quantized TFLite with verify_data)


def publish_together(folder, *, wait=True):
    """A context manager: every export into ``folder`` (or below) inside the block is staged, and all of them are
    published together when the block ends without an error (none if it fails). The folder is locked for the
    block: another job publishing into it waits (or, with ``wait=False``, gets ``FileExistsError``); a job killed
    while publishing is completed by the next one. See :mod:`keras_cnn._files`."""
    return _files.publish_together(folder, wait=wait)


def to_saved_model(model, directory, version=1, overwrite=False, *, verify_data=None, preprocessing=None):
    """Write ``directory/<version>/``, TF Serving's layout, with a ``serving_default`` signature.

    ``serving_default`` maps ``image`` (float32, dynamic batch, already preprocessed) to ``probabilities`` or
    ``logits`` (:func:`output_name`). With ``preprocessing`` (the model's
    :class:`keras_cnn.app.preprocessing.Preprocessing` record, or a dict with its ``input_size``, ``channels``,
    ``resize``, ``mean`` and ``std``) two more signatures take what clients send and preprocess inside the graph
    with the same functions as ``keras-cnn predict`` (channels, antialiased resize, centre crop, normalisation):
    ``serving_uint8`` (``image``: uint8 ``(batch, H, W, 1-4 channels)``, any size) and ``serving_bytes``
    (``image_bytes``: a batch of encoded PNG, JPEG, GIF or BMP files, ``{"b64": ...}`` in TF Serving's REST API).
    Without ``preprocessing`` only ``serving_default`` is written. A multi-label model with thresholds
    (:func:`keras_cnn.thresholds.attach`) also gets ``serving_labels`` (``image`` as ``serving_default``; outputs
    ``probabilities`` and int32 ``labels``) and ``assets.extra/keras_cnn.json`` (:func:`output_metadata`). Each
    variable is stored once.
    An existing version folder is never replaced unless ``overwrite=True``; the new folder is written under a
    temporary name, verified with ``tf.saved_model.load`` (every signature within 1e-4 of Keras) and renamed at
    the end.
    """
    _check_model(model)
    record = _serving_record(preprocessing, model)
    directory = _validate.check_path("directory", directory)
    version = _validate.check_int("version", version, minimum=1)
    _validate.check_bool("overwrite", overwrite)
    _check_images("verify_data", verify_data, model)
    target = os.path.join(directory, str(version))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(f"SavedModel version {target!r} exists; pass overwrite=True or another version.")
    root = os.path.dirname(os.path.abspath(directory))  # the folder an export's .tflite and .onnx files share
    with _files.staged_folder(target, overwrite=overwrite, root=root) as staging:
        _write_saved_model(model, staging, record, labels=True)
        images = _verification_images(model, verify_data)
        signatures = tf.saved_model.load(staging).signatures
        got = signatures["serving_default"](image=tf.constant(images))
        result = _compare(model, images, got[output_name(model)].numpy(), None, target, "savedmodel",
                          f"tensorflow {tf.__version__}")
        if record is not None:
            _verify_raw_signatures(model, signatures, record, target)
        if decision_thresholds(model) is not None:
            _verify_labels_signature(model, signatures, images, target)
        size = _folder_size(staging)
    return dataclasses.replace(result, size_bytes=size)


def to_tflite(model, path, quantization=None, representative_data=None, io_dtype="float32", *,
              class_names=None, preprocessing=None, num_calibration_samples=300, per_channel=True,
              verify_data=None, overwrite=False, min_agreement=MIN_AGREEMENT):
    """Convert to a ``.tflite`` file, verified with LiteRT, plus a ``<path>.json`` sidecar and labels file.

    ``quantization``: None (float32), "float16", "dynamic" (int8 weights, float activations) or "int8" (full
    integer, built-in int8 operators only; needs ``representative_data``: an image array or a ``tf.data``
    dataset of images or ``(images, labels)``, of which ``num_calibration_samples`` are used). ``io_dtype``
    "int8"/"uint8" makes the int8 model's input and output integer too. The sidecar records the input size,
    I/O dtypes and quantization parameters, ``preprocessing`` (e.g. ``{"scale": 1/255}``) and ``class_names``,
    which are also written one per line to ``<stem>.labels.txt``. float32 agrees with Keras within 1e-4 and
    float16 within 1e-2, or nothing is written; an int8 file with Flex, custom or float compute ops is refused,
    and a model with a layer TFLite has no integer kernel for (:data:`NO_INT8_KERNEL`, e.g. LRN) is refused
    before converting, naming the layer. A "dynamic" or "int8" file must agree with Keras on the top-1 class of at
    least ``min_agreement`` (default 0.98) of the ``verify_data`` images, of which up to 200 are used, or
    ``ExportVerificationError`` names the figure and nothing is written; pass real held-out images, preprocessed
    as in training (on seeded noise, used without ``verify_data``, agreement means nothing and is only
    reported), and ``min_agreement=0`` to accept any drift. The output is named ``probabilities`` or ``logits``
    (:func:`output_name`).
    ``per_channel=False`` quantizes each weight tensor with one scale instead of one per output channel: TFLite
    stores a float32 scale and an int64 zero point per channel for a kernel and again for its int32 bias, which
    is 7-20% of a small mobile model's int8 file; one scale saves that at some cost in accuracy (README, Export).
    The three files are written together or not at all; existing ones are replaced only with ``overwrite=True``.
    With MediaPipe installed the ``.tflite`` file also embeds LiteRT metadata (name, normalisation, labels:
    :mod:`keras_cnn._tflite_metadata`). A uint8 input takes 8-bit pixels unchanged (scale 1/255, zero point 0 for
    ``preprocessing`` ``{"scale": 1/255, "offset": 0}``) whatever range the calibration images spanned.
    A model whose family registers an int8 form (ShuffleNet v1) is converted to int8 from it
    (:func:`keras_cnn.model.int8_form`: the same weights and function, read from the model's build config; its
    pooled shortcuts otherwise make TFLite clip residual sums).
    """
    path = _check_tflite_arguments(model, path, quantization, representative_data, io_dtype, class_names,
                                   preprocessing, num_calibration_samples, per_channel, verify_data,
                                   min_agreement)
    files = tflite_files(path, labels=bool(class_names))
    _check_free(files, overwrite)
    with tempfile.TemporaryDirectory() as staging:
        _write_saved_model(int8_form(model) if quantization == "int8" else model, staging)
        converter = _converter(staging, quantization, representative_data, io_dtype, num_calibration_samples,
                               per_channel)
        flatbuffer = _finished_flatbuffer(converter.convert(), model, quantization, io_dtype, preprocessing,
                                          class_names)
        interpreter, runtime = _tflite.interpreter(flatbuffer, delegates=False)  # inspect the ops as written
        if quantization == "int8":
            _check_integer_only(interpreter)
        checked = quantization in CHECKED_AGREEMENT and verify_data is not None  # on noise it would mean nothing
        images = _verification_images(model, verify_data, AGREEMENT_IMAGES if checked else VERIFY_IMAGES)
        result = _compare(model, images, _tflite.predict(interpreter, images), quantization, path, "tflite", runtime,
                          min_agreement if checked else None)
    sidecar = _tflite_sidecar(model, interpreter, result, preprocessing, class_names, path)
    contents = [flatbuffer, json.dumps(sidecar, indent=2).encode()]
    if class_names:
        contents.append(("\n".join(map(str, class_names)) + "\n").encode())
    _files.write_all(dict(zip(files, contents)), overwrite=overwrite)
    return dataclasses.replace(result, size_bytes=len(flatbuffer))


def _finished_flatbuffer(flatbuffer, model, quantization, io_dtype, preprocessing, class_names):
    """The converter's bytes as they are published: a uint8 input pinned to what 8-bit pixels mean when
    ``preprocessing`` maps them exactly (:func:`_pixel_quantization`), then the LiteRT metadata embedded
    (:mod:`keras_cnn._tflite_metadata`; unchanged without MediaPipe). Verification runs on these bytes."""
    pinned = _pixel_quantization(preprocessing) if io_dtype == "uint8" else None
    if pinned is not None:
        flatbuffer = _tflite.pin_input_quantization(flatbuffer, *pinned) or flatbuffer
    from keras_cnn import __version__, _tflite_metadata

    kind = quantization or "float32"
    if quantization == "int8":
        kind += f", {io_dtype} input and output"
    return _tflite_metadata.embed(
        flatbuffer, name=model.name, version=__version__, preprocessing=preprocessing, class_names=class_names,
        description=f"{model.name} image classifier ({kind}) exported by keras_cnn {__version__}.",
        output=_tflite_metadata.output_description(output_name(model), _classifier_activation(model)))


def _pixel_quantization(preprocessing):
    """``(scale, zero_point)`` of a uint8 input that takes 8-bit pixels unchanged, when ``preprocessing``
    (``{"scale": s, "offset": o}``, one value for every channel) maps pixel ``p`` to ``p * s + o`` with
    ``-o / s`` a whole number in 0-255: ``(1 / 255, 0)`` for a model whose range is [0, 1]. Else None."""
    if not isinstance(preprocessing, dict):
        return None
    scale, offset = preprocessing.get("scale"), preprocessing.get("offset", 0.0)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in (scale, offset)) \
            or not scale > 0:
        return None
    zero_point = -offset / scale
    if not (abs(zero_point - round(zero_point)) < 1e-4 and 0 <= round(zero_point) <= 255):
        return None
    return float(scale), int(round(zero_point))


def _check_tflite_arguments(model, path, quantization, representative_data, io_dtype, class_names,
                            preprocessing, num_calibration_samples, per_channel, verify_data, min_agreement):
    """Every argument of :func:`to_tflite` before the conversion; returns the path as a string."""
    _check_model(model)
    path = _validate.check_path("path", path)
    _validate.check_choice("quantization", quantization, QUANTIZATIONS)
    _validate.check_float("min_agreement", min_agreement, minimum=0, maximum=1)
    if quantization == "int8":
        _check_int8_layers(model)
    _validate.check_choice("io_dtype", io_dtype, IO_DTYPES)
    if io_dtype != "float32" and quantization != "int8":
        raise ValueError(f"io_dtype={io_dtype!r} needs quantization='int8'; received quantization={quantization!r}.")
    _check_calibration(model, quantization, representative_data, num_calibration_samples, per_channel, verify_data)
    _check_class_names(class_names, model)
    try:  # the sidecar is written after the conversion; a value it cannot hold must fail before
        json.dumps(preprocessing)
    except (TypeError, ValueError):
        raise TypeError(f"preprocessing must be None or a JSON-serialisable dict such as {{'scale': 1 / 255}}; "
                        f"received {preprocessing!r}.") from None
    return path


def _check_calibration(model, quantization, representative_data, num_calibration_samples, per_channel, verify_data):
    """The calibration and verification arguments shared by :func:`to_tflite` and :func:`to_onnx`."""
    if quantization == "int8" and representative_data is None:
        raise ValueError("quantization='int8' needs representative_data: an array or tf.data dataset of about "
                         f"{num_calibration_samples} training images to calibrate activation ranges; received None.")
    _check_images("representative_data", representative_data, model)
    _check_images("verify_data", verify_data, model)
    _validate.check_int("num_calibration_samples", num_calibration_samples, minimum=1)
    _validate.check_bool("per_channel", per_channel)


def _check_class_names(class_names, model):
    if class_names is None:
        return
    if isinstance(class_names, str) or not hasattr(class_names, "__len__"):
        raise TypeError(f"class_names must be None or a list of names; received {class_names!r}.")
    classes = model.outputs[0].shape[-1]
    if len(class_names) != classes:
        raise ValueError(f"class_names must have one name per class ({classes}, the model's outputs); received "
                         f"{len(class_names)}.")
    for index, name in enumerate(class_names):
        if not isinstance(name, str) or any(_breaks_lines(c) for c in name):
            raise ValueError(f"class_names[{index}] must be a string without control or line-break characters (a "
                             f"newline in labels.txt shifts every later label); received {name!r}.")


def _breaks_lines(character):
    return unicodedata.category(character) in ("Cc", "Zl", "Zp")


def _check_int8_layers(model):
    """Refuse, before any conversion, a model with a layer TFLite has no integer kernel for (the converter
    would keep it in float, and :func:`_check_integer_only` would refuse the file after the whole conversion)."""
    for layer in _layers(model):
        reason = next((NO_INT8_KERNEL[cls.__name__] for cls in type(layer).__mro__ if cls.__name__ in NO_INT8_KERNEL),
                      None)
        if reason:
            op, remedy = reason
            raise ExportVerificationError(
                f"quantization='int8' cannot convert {model.name!r}: its layer {layer.name!r} "
                f"({type(layer).__name__}) becomes TFLite's {op}, which has no integer kernel; nothing was "
                f"converted. {remedy[0].upper()}{remedy[1:]}, or export with quantization=None, 'float16' or "
                "'dynamic'.")


def _layers(model):
    """Every layer of ``model``, nested models' layers included, in graph order."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


def to_onnx(model, path, opset=17, *, quantization=None, representative_data=None, num_calibration_samples=300,
            per_channel=True, verify_data=None, overwrite=False, min_agreement=MIN_AGREEMENT):
    """Convert with tf2onnx (input ``image`` with a dynamic batch, output ``probabilities`` or ``logits``:
    :func:`output_name`).

    A float file is verified with onnxruntime at batch 1 and batch N within 1e-4 of Keras before it is moved
    into place. ``quantization="int8"`` quantizes it with onnxruntime's static quantization in QDQ form
    (:mod:`keras_cnn._onnx_int8`: int8 weights, per output channel unless ``per_channel=False``, and int8
    activations whose ranges come from ``num_calibration_samples`` images of ``representative_data``,
    preprocessed as in training), the server-side int8 path; like :func:`to_tflite`'s int8 file it must agree
    with Keras on the top-1 class of at least ``min_agreement`` of the ``verify_data`` images (up to 200; on
    the seeded noise used without them agreement is only reported), or nothing is written. An existing file is
    replaced only with ``overwrite=True``.
    """
    import onnxruntime

    from keras_cnn import _onnx_int8

    path = _check_onnx_arguments(model, path, quantization, representative_data, num_calibration_samples,
                                 per_channel, verify_data, min_agreement)
    opset = _validate.check_int("opset", opset, minimum=13, maximum=_compat.tf2onnx_max_opset())
    _check_free([path], overwrite)
    function, signature = _serving_function(int8_form(model) if quantization else model)
    data = _with_metadata(_onnx_convert.convert(function, signature, opset), model).SerializeToString()
    if quantization:
        data = _onnx_int8.quantize(data, _samples(representative_data, num_calibration_samples), per_channel)
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    checked = quantization is not None and verify_data is not None  # on noise agreement would mean nothing
    images = _verification_images(model, verify_data, AGREEMENT_IMAGES if checked else VERIFY_IMAGES)
    output = [output_name(model)]
    single = np.concatenate([session.run(output, {"image": im[None]})[0] for im in images[:VERIFY_IMAGES]])
    batched = session.run(output, {"image": images})[0]
    runtime = f"onnxruntime {onnxruntime.__version__}"
    if quantization and not np.array_equal(single.argmax(-1), batched[:VERIFY_IMAGES].argmax(-1)):
        raise ExportVerificationError(f"int8 onnx export of {model.name!r} gives other classes at batch 1 than "
                                      f"at batch {len(images)} in {runtime}; nothing was written.")
    if not quantization:
        _compare(model, images, single, None, path, "onnx", runtime)
    result = _compare(model, images, batched, quantization, path, "onnx", runtime,
                      min_agreement if checked else None)
    _files.write_all({path: data}, overwrite=overwrite)
    return dataclasses.replace(result, size_bytes=len(data))


def _with_metadata(proto, model):
    """The ONNX model with :func:`output_metadata` in its ``metadata_props`` (keys ``keras_cnn.*``, JSON values
    where not plain text) and the output's meaning in its ``doc_string``."""
    meaning = output_metadata(model)
    values = {"keras_cnn.output": meaning["description"], "keras_cnn.task": meaning["task"],
              "keras_cnn.thresholds": json.dumps(meaning["thresholds"])}
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.graph.output[0].doc_string = meaning["description"]
    return proto


def _check_onnx_arguments(model, path, quantization, representative_data, num_calibration_samples, per_channel,
                          verify_data, min_agreement):
    """Every argument of :func:`to_onnx` but ``opset`` before the conversion; returns the path as a string."""
    _check_model(model)
    path = _validate.check_path("path", path)
    _validate.check_choice("quantization", quantization, ONNX_QUANTIZATIONS)
    _validate.check_float("min_agreement", min_agreement, minimum=0, maximum=1)
    _check_calibration(model, quantization, representative_data, num_calibration_samples, per_channel, verify_data)
    return path


def _check_model(model):
    _validate.check_model(model)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"export needs one image input and one output; {model.name!r} has {len(model.inputs)} "
                         f"and {len(model.outputs)} (strip auxiliary classifiers first).")
    if len(model.inputs[0].shape) != 4 or model.inputs[0].shape[-1] is None:
        raise ValueError(f"export needs an (batch, height, width, channels) input; received {model.inputs[0].shape}.")


def _check_images(name, data, model):
    """``data`` is None, an image array or a ``tf.data`` dataset whose images fit the model's input."""
    if data is None:
        return
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec[0] if isinstance(data.element_spec, tuple) else data.element_spec
        shape = tuple(spec.shape)
    elif isinstance(data, np.ndarray):
        shape = data.shape
    else:
        raise TypeError(f"{name} must be an image array or a tf.data.Dataset; received {type(data).__name__}.")
    expected = tuple(model.inputs[0].shape[1:])
    if len(shape) not in (3, 4) or any(e is not None and g is not None and e != g
                                       for e, g in zip(expected, shape[-3:])):
        raise ValueError(f"{name} must hold images of the model's input shape {expected}, as (N, H, W, C) or "
                         f"(H, W, C); received shape {shape}.")


def _check_free(paths, overwrite):
    """Refuse to replace an existing file unless ``overwrite`` (checked before any conversion work)."""
    _validate.check_bool("overwrite", overwrite)
    existing = [p for p in paths if os.path.exists(p)]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]!r} exists; pass overwrite=True to replace it.")


def output_name(model):
    """The name every export gives ``model``'s output: ``"probabilities"`` when its classifier activation is
    softmax or sigmoid (per-class probabilities, which is what a multi-label model outputs), ``"logits"``
    otherwise (``classifier_activation=None`` or "linear"). The activation is read from the build config of a
    ``keras_cnn.build`` model, else from the layer that makes a plain Keras model's output."""
    return "probabilities" if _classifier_activation(model) in PROBABILITY_ACTIVATIONS else "logits"


def _classifier_activation(model):
    """The name of the activation that ends ``model`` ("linear" when there is none)."""
    if has_config(model):
        config = model_config(model)
        if config.get("include_top", True):
            return _activation_name(config.get("classifier_activation"))
    history = getattr(model.outputs[0], "_keras_history", None)
    layer = history.operation if history is not None else model.layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    return _activation_name(getattr(layer, "activation", None))


def _activation_name(activation):
    if activation is None:
        return "linear"
    if isinstance(activation, str):
        return activation.lower()
    return getattr(activation, "__name__", type(activation).__name__).lower()


def _serving_function(model):
    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name="image")
    name = output_name(model)
    function = tf.function(lambda image: {name: model(image, training=False)})
    return function, (spec,)


def _write_saved_model(model, directory, record=None, labels=False):
    """``serving_default``, plus ``serving_uint8`` and ``serving_bytes`` with a preprocessing ``record``, plus
    with ``labels`` for a multi-label model with thresholds ``serving_labels`` and ``assets.extra/keras_cnn.json``.

    No ``archive.track(model)``: it would save every Keras variable a second time (under ``variables/`` beside
    the ``_all_variables/`` the endpoints capture, doubling the SavedModel; docs/benchmarks.md), and TF Serving needs
    only the endpoints."""
    function, signature = _serving_function(model)
    archive = keras.export.ExportArchive()
    archive.add_endpoint(name="serving_default", fn=function, input_signature=list(signature))
    if record is not None:
        for name, (raw, raw_signature) in _raw_serving_functions(model, record).items():
            archive.add_endpoint(name=name, fn=raw, input_signature=list(raw_signature))
    limits = decision_thresholds(model) if labels else None
    if limits is not None:
        archive.add_endpoint(name="serving_labels", fn=_labels_function(model, limits), input_signature=list(signature))
    archive.write_out(directory, verbose=False)
    if limits is not None:
        extra = os.path.join(directory, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        names = list(record.class_names) if record is not None else None
        with open(os.path.join(extra, "keras_cnn.json"), "w", encoding="utf-8") as file:
            json.dump(output_metadata(model, names), file, indent=2)


def _labels_function(model, limits):
    """``serving_labels``: the probabilities and, per class, 1 where one reaches its threshold."""
    name = output_name(model)
    thresholds = tf.constant(limits, tf.float32)

    def labels(image):
        scores = model(image, training=False)
        return {name: scores, "labels": tf.cast(scores >= thresholds, tf.int32)}

    return labels


def _verify_labels_signature(model, signatures, images, target):
    """``serving_labels`` gives Keras's probabilities (within 1e-4) and their label sets at the thresholds."""
    got = signatures["serving_labels"](image=tf.constant(images))
    runtime = f"tensorflow {tf.__version__}"
    _compare(model, images, got[output_name(model)].numpy(), None, target, "savedmodel serving_labels", runtime)
    expected = _decisions(model, np.asarray(got[output_name(model)]))
    if not np.array_equal(got["labels"].numpy().astype(bool), expected):
        raise ExportVerificationError(f"savedmodel serving_labels of {model.name!r} gives other label sets than its "
                                      f"probabilities at the thresholds in {runtime}; nothing was written.")


def decision_thresholds(model):
    """The per-class decision thresholds stored in a multi-label ``model`` (float32 array), or None."""
    from keras_cnn import thresholds

    limits = thresholds.attached(model)
    return None if limits is None else limits.astype("float32")


def output_metadata(model, class_names=None):
    """What every export of ``model`` says of its output: ``{"name", "description", "task", "thresholds",
    "class_names"}``; ``task`` is "multilabel" for a sigmoid classifier (independent per-class probabilities, a
    label wherever one reaches its class's threshold), else "multiclass"."""
    from keras_cnn import _tflite_metadata

    name, activation = output_name(model), _classifier_activation(model)
    limits = decision_thresholds(model)
    return {**_tflite_metadata.output_description(name, activation),
            "task": "multilabel" if activation == "sigmoid" else "multiclass",
            "thresholds": None if limits is None else [float(t) for t in limits],
            "class_names": list(class_names) if class_names else None}


SERVING_FIELDS = ("input_size", "channels", "resize", "mean", "std")  # what the raw signatures need of a record


def _serving_record(preprocessing, model):
    """``preprocessing`` (None, a Preprocessing record or its dict) as a checked record that fits ``model``."""
    if preprocessing is None:
        return None
    from keras_cnn.app import preprocessing as records

    if isinstance(preprocessing, records.Preprocessing):
        values = dataclasses.asdict(preprocessing)
    elif isinstance(preprocessing, dict):
        values = dict(preprocessing)
    else:
        raise TypeError("preprocessing must be None, a keras_cnn.app.preprocessing.Preprocessing record or its "
                        f"dict; received {type(preprocessing).__name__}.")
    missing = [name for name in SERVING_FIELDS if name not in values]
    if missing:
        raise ValueError(f"preprocessing must hold {', '.join(SERVING_FIELDS)}; received a dict without "
                         f"{', '.join(missing)}.")
    fields = {f.name for f in dataclasses.fields(records.Preprocessing)}
    values.setdefault("class_names", [str(i) for i in range(model.outputs[0].shape[-1])])
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items() if k in fields}
    try:
        record = records.Preprocessing(**records._checked(values))  # the checks load() applies to a file
    except (TypeError, ValueError) as error:
        raise type(error)(f"preprocessing is not a valid record: {error}.") from None
    *size, channels = model.inputs[0].shape[1:]
    if record.channels != channels or any(s is not None and s != r for s, r in zip(size, record.input_size)):
        raise ValueError(f"preprocessing must fit the model's input {tuple(model.inputs[0].shape[1:])}; received "
                         f"input_size {list(record.input_size)} and channels {record.channels}.")
    return record


def _raw_serving_functions(model, record):
    """``{name: (function, input signature)}`` of the signatures that preprocess inside the graph.

    Each image goes through what ``keras-cnn predict`` does to a file (``keras_cnn.app.predict._read``):
    decoded with its own channels (``keras_cnn._images._decoded``), brought to [0, 1], the record's channels
    and its ``resize`` (:func:`keras_cnn._images.to_model_range`), then the record's centre crop and
    normalisation (``Preprocessing.prepare``), so both agree with ``predict`` to float rounding."""
    from keras_cnn import _images

    name = output_name(model)
    unit = tf.TensorSpec((*record.resize, record.channels), tf.float32)

    def prepared(images, to_pixels):
        resized = tf.map_fn(lambda x: _images.to_model_range(to_pixels(x), record.resize, record.channels),
                            images, fn_output_signature=unit)
        return {name: model(record.prepare(resized), training=False)}

    def uint8(image):
        return prepared(image, lambda x: x)

    def encoded(image_bytes):
        return prepared(image_bytes, lambda x: tf.io.decode_image(x, channels=0, expand_animations=False))

    return {"serving_uint8": (uint8, (tf.TensorSpec((None, None, None, None), tf.uint8, name="image"),)),
            "serving_bytes": (encoded, (tf.TensorSpec((None,), tf.string, name="image_bytes"),))}


def _verify_raw_signatures(model, signatures, record, target):
    """``serving_uint8`` and ``serving_bytes`` on seeded 8-bit noise (of another size than ``resize``, so the
    resize runs) within 1e-4 of Keras on the same pixels preprocessed eagerly, as ``keras-cnn predict`` does."""
    from keras_cnn import _images

    height, width = record.resize
    pixels = np.random.default_rng(0).integers(0, 256, (2, height + 3, width + 5, record.channels), dtype="uint8")
    images = np.stack([record.prepare(_images.to_model_range(p, record.resize, record.channels)).numpy()
                       for p in pixels])
    encoded = tf.stack([tf.io.encode_png(p) for p in pixels])
    name = output_name(model)
    runtime = f"tensorflow {tf.__version__}"
    for signature, got in (("serving_uint8", signatures["serving_uint8"](image=tf.constant(pixels))),
                           ("serving_bytes", signatures["serving_bytes"](image_bytes=encoded))):
        _compare(model, images, got[name].numpy(), None, target, f"savedmodel {signature}", runtime)


def _converter(saved_model, quantization, representative_data, io_dtype, samples, per_channel=True):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if quantization is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        _compat.set_per_channel(converter, per_channel)
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        converter.representative_dataset = lambda: ([s] for s in _samples(representative_data, samples))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = getattr(tf, io_dtype)
    return converter


def _samples(data, limit):
    """Single images ``(1, H, W, C)`` float32 from an array or a dataset of images or (images, labels) (checked
    by ``_check_images``)."""
    if isinstance(data, tf.data.Dataset):
        data = (element[0] if isinstance(element, tuple) else element for element in data)
    else:
        data = [data]
    count = 0
    for batch in data:
        batch = np.asarray(batch, dtype="float32")
        for image in batch if batch.ndim == 4 else batch[None]:
            if count == limit:
                return
            count += 1
            yield image[None]


def _check_integer_only(interpreter):
    """Refuse Flex/custom operators and float tensors anywhere but the model's float input and output, which one
    QUANTIZE and one DEQUANTIZE convert (a DEQUANTIZE inside the graph would hand floats to the next op)."""
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    boundary = {d["index"] for d in interpreter.get_input_details() + interpreter.get_output_details()}
    offenders = {}  # op name -> its first float tensor
    for op in _compat.tflite_ops(interpreter):
        name = op["op_name"]
        if name.startswith("Flex") or name in ("CUSTOM", "DELEGATE"):
            raise ExportVerificationError(f"int8 model contains the non-builtin operator {name!r}.")
        floats = [tensors[i]["name"] for i in (*op["inputs"], *op["outputs"]) if i >= 0
                  and np.issubdtype(tensors[i]["dtype"], np.floating)
                  and not (name in BOUNDARY_OPS and i in boundary)]
        if floats:
            offenders.setdefault(name, floats[0])
    if offenders:
        # the op without an int8 kernel first, before the DEQUANTIZE that feeds it
        names = sorted(offenders, key=lambda n: n in BOUNDARY_OPS)
        raise ExportVerificationError(f"int8 model computes {', '.join(names)} in floating point (tensor "
                                      f"{offenders[names[0]]!r}); the model has an op TFLite cannot quantize.")


def _verification_images(model, data, count=VERIFY_IMAGES):
    """Up to ``count`` images of ``data`` if given, else ``VERIFY_IMAGES`` of seeded uniform noise in [0, 1)."""
    if data is not None:
        return np.concatenate(list(_samples(data, count)))
    height, width, channels = (d or 32 for d in model.inputs[0].shape[1:])
    return np.random.default_rng(0).uniform(0, 1, (VERIFY_IMAGES, height, width, channels)).astype("float32")


def _compare(model, images, got, quantization, path, fmt, runtime, min_agreement=None):
    """The figures of ``got`` against Keras on ``images``; float formats within their tolerance, and top-1
    agreement at least ``min_agreement`` when given, or ``ExportVerificationError``."""
    expected = np.concatenate([keras.ops.convert_to_numpy(model(images[i:i + 64], training=False))
                               for i in range(0, len(images), 64)])
    diff = float(np.max(np.abs(expected - got)))
    agreed = int(np.sum(agreeing(model, expected, got)))
    agreement = agreed / len(images)
    what = "label set" if decision_thresholds(model) is not None else "top-1 class"
    tolerance = FLOAT_TOLERANCE.get(quantization)
    if tolerance is not None and not np.allclose(got, expected, atol=tolerance, rtol=tolerance):
        raise ExportVerificationError(f"{fmt} export of {model.name!r} differs from Keras by {diff:.3g} in "
                                      f"{runtime} (tolerance {tolerance}); nothing was written.")
    if min_agreement is not None and agreement < min_agreement:
        calibration = "Check that representative_data is preprocessed as in training (it sets the int8 ranges), or " \
            "accept" if quantization == "int8" else "Accept"
        accept = f"{np.floor(agreement * 100) / 100:.2f}"
        raise ExportVerificationError(
            f"{quantization} {fmt} export of {model.name!r} agrees with Keras on the {what} of {agreed} of "
            f"{len(images)} verification images ({agreement:.4f}), below min_agreement={min_agreement} (max "
            f"|difference| {diff:.3g}); nothing was written. {calibration} the drift with min_agreement={accept} "
            f"(keras-cnn export --min-agreement {accept}).")
    return ExportResult(os.fspath(path), fmt, 0, diff, agreement, runtime, quantization, len(images), min_agreement)


def _decisions(model, scores):
    """What a prediction decides: the top-1 class, or a multi-label model's label set at its thresholds."""
    limits = decision_thresholds(model)
    return scores.argmax(-1) if limits is None else scores >= limits


def agreeing(model, expected, got):
    """Per image, whether the scores ``got`` decide what ``expected`` (Keras's) decide: the same top-1 class, or
    for a multi-label model with thresholds the same whole label set."""
    same = _decisions(model, expected) == _decisions(model, got)
    return same.all(-1) if same.ndim > 1 else same


def _tflite_sidecar(model, interpreter, result, preprocessing, class_names, path):
    io = dict(zip(("input", "output"), _tflite.io_details(interpreter)))
    sidecar = {"model": model.name, "format": "tflite", "quantization": result.quantization,
               "preprocessing": preprocessing, "class_names": list(class_names) if class_names else None,
               "labels_file": os.path.basename(_labels_path(path)) if class_names else None,
               "verification": {"runtime": result.runtime, "max_abs_diff": result.max_abs_diff,
                                "top1_agreement": result.top1_agreement, "images": result.images,
                                "min_agreement": result.min_agreement}}
    for key, details in io.items():
        scale, zero_point = details["quantization"]
        sidecar[key] = {"name": _tflite.INPUT if key == "input" else _tflite.output_name(interpreter),
                        "shape": [int(d) for d in details["shape_signature"]],
                        "dtype": np.dtype(details["dtype"]).name,
                        "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None}
    meaning = output_metadata(model)
    sidecar["output"]["description"] = meaning["description"]
    sidecar.update(task=meaning["task"], thresholds=meaning["thresholds"])
    return sidecar


def tflite_files(path, labels):
    """The files :func:`to_tflite` writes for ``path``: the model, its ``.json`` sidecar and, with ``labels``
    (class names given), ``<stem>.labels.txt``."""
    return [os.fspath(path), f"{os.fspath(path)}.json"] + ([_labels_path(path)] if labels else [])


def _labels_path(path):
    return f"{os.path.splitext(path)[0]}.labels.txt"


def _folder_size(folder):
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(folder) for f in files)
