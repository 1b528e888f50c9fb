"""A ``.keras`` file or an export (SavedModel folder, ``.tflite``, ``.onnx``) as one function: images -> probabilities.

Every runner takes preprocessed float32 images ``(N, H, W, C)`` and returns ``(N, classes)`` float32
probabilities, or logits for a model without a softmax or sigmoid (``Runner.output`` says which); integer
(int8/uint8) TFLite inputs and outputs are quantized and dequantized with the scale and zero point the file
records (``keras_cnn._tflite``, as export verification does). ``Runner.input_shape`` is ``(H, W, C)`` (None
where the model accepts any size).
"""

import dataclasses
import os

import numpy as np

KINDS = ("keras", "savedmodel", "tflite", "onnx")


@dataclasses.dataclass(frozen=True)
class Runner:
    predict: object
    input_shape: tuple
    kind: str
    path: str
    model: object = None  # the Keras model, for kind "keras" (dense and multi-crop evaluation need it)
    output: str = "probabilities"  # what predict returns: "probabilities" or "logits" (keras_cnn.export.output_name)


def kind_of(path):
    """"keras", "savedmodel", "tflite" or "onnx" from the path; a clear error for anything else."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return "savedmodel"
    for kind, suffix in (("keras", ".keras"), ("tflite", ".tflite"), ("onnx", ".onnx")):
        if path.endswith(suffix) and os.path.isfile(path):
            return kind
    raise ValueError(f"--model must be an existing .keras file, SavedModel folder, .tflite or .onnx file; "
                     f"received {path!r}.")


def load(path, batch_size=64):
    path = os.fspath(path)
    return {"keras": _keras, "savedmodel": _saved_model, "tflite": _tflite, "onnx": _onnx}[kind_of(path)](
        path, batch_size)


def _batched(fn, batch_size):
    def predict(images):
        return np.concatenate([np.asarray(fn(images[i:i + batch_size]), dtype="float32")
                               for i in range(0, len(images), batch_size)])

    return predict


def _keras(path, batch_size):
    import keras

    model = load_keras(path)
    if len(model.outputs) != 1:
        raise ValueError(f"{path!r} has {len(model.outputs)} outputs; expected one (keras-cnn train saves the main "
                         "output only).")
    function = _batched(lambda x: keras.ops.convert_to_numpy(model(x, training=False)), batch_size)
    from keras_cnn.export import output_name

    return Runner(function, tuple(model.input_shape[1:]), "keras", path, model, output_name(model))


def load_keras(path):
    """``keras.saving.load_model(path, safe_mode=True)``; a file that is not a whole .keras zip archive is a
    ``ValueError`` naming it and what is wrong (Keras says "File not found" for a truncated one: it tells a
    .keras file by its zip directory, which sits at the end)."""
    import zipfile
    import zlib

    import keras

    import keras_cnn  # noqa: F401  (registers the custom layers before loading)

    with open(path, "rb"):  # a missing or unreadable file is named as such, not as a damaged one
        pass
    if not zipfile.is_zipfile(path):
        _unreadable(path, f"no zip directory at its end ({os.path.getsize(path):,} bytes)")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError) as error:
        _unreadable(path, f"{type(error).__name__}: {error}")
    except OSError as error:
        if error.errno is not None:  # the system's (disk, permissions): not the file's content
            raise
        _unreadable(path, f"{type(error).__name__}: {error}")  # h5py's, for a damaged model.weights.h5 inside


def _unreadable(path, reason):
    raise ValueError(f"{path!r} is not a readable .keras file (truncated or corrupt: {reason}); save or copy it "
                     "again.") from None


def _saved_model(path, batch_size):
    import tensorflow as tf

    folder = _version_folder(path)
    signature = tf.saved_model.load(folder).signatures["serving_default"]
    spec = signature.structured_input_signature[1]["image"]
    output = _one_output(folder, list(signature.structured_outputs))
    function = _batched(lambda x: signature(image=tf.constant(x, tf.float32))[output].numpy(), batch_size)
    return Runner(function, tuple(spec.shape[1:]), "savedmodel", folder, output=output)


def _one_output(path, names):
    """The export's one output: "probabilities" or "logits" (keras_cnn.export.output_name)."""
    if len(names) != 1:
        raise ValueError(f"--model {path!r} must have one output (probabilities or logits); it has {names}.")
    return names[0]


def _version_folder(path):
    """``saved_models/lenet5`` (TF Serving's base path) -> its highest version ``saved_models/lenet5/<n>``."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = sorted((int(d) for d in os.listdir(path) if d.isdigit()), reverse=True)
    for version in versions:
        if os.path.isfile(os.path.join(path, str(version), "saved_model.pb")):
            return os.path.join(path, str(version))
    raise ValueError(f"--model folder {path!r} is neither a SavedModel nor a TF Serving base folder with version "
                     "sub-folders holding saved_model.pb.")


def _tflite(path, batch_size):
    from keras_cnn import _tflite

    interpreter, _ = _tflite.interpreter(path)
    given, _ = _tflite.io_details(interpreter)
    shape = tuple(int(d) if d > 0 else None for d in given["shape_signature"][1:])
    return Runner(lambda images: _tflite.predict(interpreter, images), shape, "tflite", path,
                  output=_tflite.output_name(interpreter))


def _onnx(path, batch_size):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    output = _one_output(path, [o.name for o in session.get_outputs()])
    function = _batched(lambda x: session.run([output], {input_name: x.astype("float32")})[0], batch_size)
    shape = tuple(d if isinstance(d, int) else None for d in session.get_inputs()[0].shape[1:])
    return Runner(function, shape, "onnx", path, output=output)


def open_model(path, record_path=None, batch_size=64):
    """``(runner, record)``: the model and its preprocessing record, which must fit it (channels, input size,
    classes: ``preprocessing.check_fits``). Without a record beside it, a ``.keras`` model loaded from an
    upstream checkpoint uses that checkpoint's preprocessing, any other model a [0, 1] default; a note line says
    which."""
    from keras_cnn.app import preprocessing

    runner = load(path, batch_size)
    found = preprocessing.locate(path, record_path)
    if found is not None:
        record, name = preprocessing.load(found), repr(os.fspath(path))
        preprocessing.check_fits(record, found, name, runner.input_shape, None)
        # The class count once the input is known to fit: one prediction tells it for every kind of file.
        preprocessing.check_fits(record, found, name, runner.input_shape, _classes(runner, record))
        return runner, record
    record = checkpoint_record(runner.model, f"no {preprocessing.record_path(path)}") if runner.model else None
    return runner, record if record is not None else _default_record(runner, path)


def _classes(runner, record):
    if runner.model is not None:
        return runner.model.output_shape[-1]
    blank = np.zeros((1, *record.input_size, record.channels), "float32")
    return runner.predict(blank).shape[-1]


def checkpoint_record(model, reason):
    """The preprocessing record of a model whose weights came from an upstream checkpoint (its classes named by
    index), with a note line starting with ``reason``; None for any other model."""
    from keras_cnn.app import preprocessing
    from keras_cnn.weights import checkpoint_info

    info = checkpoint_info(model)
    if info is None:
        return None
    shape = tuple(model.input_shape[1:])
    outputs = model.output_shape[-1] if len(model.output_shape) == 2 else 0
    record = preprocessing.from_checkpoint(info, shape, [str(i) for i in range(outputs)], model=model.name)
    print(f"note: {reason}; using the preprocessing of the checkpoint the weights came from "
          f"({preprocessing.describe_checkpoint(info)}): resize to {_size(record.resize)}, centre crop "
          f"{_size(record.input_size)}, mean {_values(record.mean)}, std {_values(record.std)}; classes named by "
          "index.")
    return record


def _default_record(runner, path):
    from keras_cnn.app import preprocessing
    from keras_cnn.model import decision_thresholds

    height, width, channels = runner.input_shape
    if None in (height, width, channels):
        raise ValueError(f"{path!r} has no {preprocessing.SUFFIX} beside it and accepts any input size; pass "
                         f"--preprocessing with the record written by keras-cnn train.")
    classes = runner.predict(np.zeros((1, height, width, channels), "float32")).shape[-1]
    limits = None if runner.model is None else decision_thresholds(runner.model)  # a .keras multi-label model's
    print(f"note: no {preprocessing.record_path(path)}; assuming inputs in [0, 1] resized to {height}x{width} "
          "and classes named by index" + ("; multi-label, with the thresholds the model carries." if limits else "."))
    record = preprocessing.create((height, width, channels), [str(i) for i in range(classes)],
                                  task="multilabel" if limits else "multiclass")
    return preprocessing.with_thresholds(record, limits) if limits else record



def _size(pair):
    return f"{pair[0]}x{pair[1]}"


def _values(values):
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def probabilities(runner, outputs, record=None):
    """``runner``'s outputs as probabilities: the softmax of a logits model's outputs (their sigmoid when
    ``record`` is a multi-label model's: independent per class), others as they are."""
    if runner.output != "logits":
        return outputs
    if record is not None and record.multilabel:
        return 1.0 / (1.0 + np.exp(-outputs.astype("float64")))
    exp = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)
