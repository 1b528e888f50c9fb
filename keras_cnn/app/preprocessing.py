"""The preprocessing recorded with every trained model, so evaluation, prediction and exports feed it alike.

The record is a JSON file ``<stem>.preprocessing.json`` beside the model: ``saved_models/lenet5.keras`` and its
exports ``saved_models/lenet5/1/``, ``lenet5.tflite``, ``lenet5.int8.tflite``, ``lenet5.onnx`` all share
``saved_models/lenet5.preprocessing.json``. Images enter as floats in [0, 1] of any size and channel count; they
are brought to the model's channels, resized to ``resize``, centre-cropped to ``input_size`` when ``resize`` is
larger, and normalised per channel as ``(x - mean) / std`` (normalization "checkpoint": the mean and std of the
upstream checkpoint the weights came from). Normalisation lives outside the model (no Lambda layers), so
deployed models expect these inputs, as the TFLite sidecar's byte-level ``preprocessing`` says.

:func:`load` checks every field (a truncated file, a missing field, a std of 0 or a NaN is a ``ValueError``
naming the file and the field) and :func:`check_fits` the record against its model (channels, input size,
classes), naming both files.

A multi-label model's record says so (``task`` "multilabel": its outputs are independent sigmoid probabilities,
not a distribution) and holds the per-class ``thresholds`` chosen on the validation split
(:mod:`keras_cnn.thresholds`), which evaluation, prediction and every export's sidecar use.
"""

import dataclasses
import json
import math
import os
import reprlib

import numpy as np

from keras_cnn import _validate
from keras_cnn._images import match_channels  # the one channel rule (also for files)

TASKS = ("multiclass", "multilabel")
NORMALIZATIONS = ("auto", "unit", "symmetric", "mean", "standardize", "checkpoint")
SUFFIX = ".preprocessing.json"
MODEL_SUFFIXES = (".keras", ".tflite", ".onnx")
QUANTIZATION_TAGS = (".int8", ".float16", ".dynamic")
# Paper conventions for --normalization auto: Inception/Xception scale to [-1, 1] (TF-slim), AlexNet and VGG
# subtract the mean RGB of the training set; the others (batch-normalised or LeNet) take [0, 1] as it is.
# "checkpoint" is the mean and std an upstream checkpoint was trained with (keras_cnn.weights.checkpoint_info).
FAMILY_NORMALIZATION = {"inception": "symmetric", "xception": "symmetric", "alexnet": "mean", "vgg": "mean"}


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How images in [0, 1] become model inputs, plus what the model's outputs mean."""

    input_size: tuple
    channels: int
    resize: tuple
    mean: tuple
    std: tuple
    class_names: tuple
    normalization: str = "unit"
    model: str = None
    data: dict = None  # the training data (source, seed, fractions): evaluate's default data
    task: str = "multiclass"  # "multilabel": independent sigmoid scores, a label wherever one reaches its threshold
    thresholds: tuple = None  # multilabel: one decision threshold per class, chosen on the validation split

    @property
    def multilabel(self):
        return self.task == "multilabel"

    def decision_thresholds(self):
        """A multi-label model's per-class thresholds (``keras_cnn.thresholds.DEFAULT_THRESHOLD`` for each class
        when none were chosen); None for a multi-class model."""
        if not self.multilabel:
            return None
        from keras_cnn.thresholds import DEFAULT_THRESHOLD

        return self.thresholds or (DEFAULT_THRESHOLD,) * len(self.class_names)

    def prepare(self, images):
        """Channels, resize, centre crop and normalisation of a float image or batch (TensorFlow ops)."""
        import tensorflow as tf

        x = match_channels(tf.convert_to_tensor(images, tf.float32), self.channels)
        if tuple(x.shape[-3:-1]) != self.resize:
            x = tf.image.resize(x, self.resize, antialias=True)
        return self.normalize(centre_crop(x, self.input_size))

    def normalize(self, x):
        import tensorflow as tf

        return (x - tf.constant(self.mean, x.dtype)) / tf.constant(self.std, x.dtype)

    def pixel_transform(self):
        """The same normalisation for 8-bit pixels p: ``p * scale + offset`` (scalars when channels agree)."""
        scale = [1.0 / (255.0 * s) for s in self.std]
        offset = [-m / s + 0.0 for m, s in zip(self.mean, self.std)]  # + 0.0: no "-0.0"
        squeeze = (lambda v: v[0] if len(set(v)) == 1 else v)
        return {"scale": squeeze(scale), "offset": squeeze(offset)}

    def to_json(self):
        return {**dataclasses.asdict(self), "pixel_transform": self.pixel_transform()}


def create(input_shape, class_names, *, normalization="unit", images=None, resize=None, model=None, data=None,
           statistics=None, task="multiclass"):
    """A record for a model input ``(height, width, channels)``; ``images`` (train, [0, 1]) give the statistics
    of "mean" and "standardize", ``statistics`` (``(mean, std)``, one value or one per channel) those of
    "checkpoint"; ``task`` "multilabel" marks a multi-label model (thresholds: :func:`with_thresholds`)."""
    height, width, channels = input_shape
    _validate.check_choice("normalization", normalization, NORMALIZATIONS[1:])
    _validate.check_choice("task", task, TASKS)
    mean, std = _statistics(normalization, images, channels, statistics)
    resize = tuple(resize or (height, width))
    if resize[0] < height or resize[1] < width:
        raise ValueError(f"resize must be at least the model input {height}x{width}; received {resize}.")
    return Preprocessing((height, width), channels, resize, mean, std, tuple(str(n) for n in class_names),
                         normalization, model, data, task)


def with_thresholds(record, thresholds):
    """``record`` of a multi-label model with its per-class ``thresholds`` (checked: one per class, in [0, 1])."""
    if not record.multilabel:
        raise ValueError(f"thresholds belong to a multi-label model's record; this record's task is {record.task!r}.")
    checked = _thresholds([float(t) for t in thresholds], len(record.class_names))
    return dataclasses.replace(record, thresholds=checked)


def resolve_normalization(requested, family):
    """``auto`` -> the family's convention (FAMILY_NORMALIZATION), else ``unit``."""
    _validate.check_choice("--normalization", requested, NORMALIZATIONS)
    return FAMILY_NORMALIZATION.get(family, "unit") if requested == "auto" else requested


def from_checkpoint(info, input_shape, class_names, *, model=None):
    """The record of a model whose weights came from an upstream checkpoint (``info``:
    :func:`keras_cnn.weights.checkpoint_info`): the checkpoint's mean and std, and its resize-to-crop ratio
    (e.g. 256 -> 224) at the model's input size (a free height or width takes the checkpoint's)."""
    recorded = info["preprocessing"]
    crop, resize = recorded["input_size"], recorded["resize"]
    height, width, channels = input_shape
    height, width = height or crop[0], width or crop[1]
    scaled = (round(height * resize[0] / crop[0]), round(width * resize[1] / crop[1]))
    return create((height, width, channels), class_names, normalization="checkpoint", resize=scaled, model=model,
                  statistics=(recorded["mean"], recorded["std"]))


def describe_checkpoint(info):
    """``torchvision:resnet50 (resnet50-11ad3fa6.pth)``: where a model's weights came from."""
    return f"{info['source']}:{info['upstream']} ({info['file']})"


def _statistics(normalization, images, channels, statistics=None):
    if normalization == "checkpoint":
        if statistics is None:
            raise ValueError("normalization='checkpoint' needs the checkpoint's (mean, std); received None.")
        return _per_channel("mean", statistics[0], channels), _per_channel("std", statistics[1], channels)
    if normalization == "unit":
        return (0.0,) * channels, (1.0,) * channels
    if normalization == "symmetric":
        return (0.5,) * channels, (0.5,) * channels
    if images is None:
        raise ValueError(f"normalization={normalization!r} needs training images for its statistics; received None.")
    pixels = np.asarray(images, dtype="float64").reshape(-1, channels)
    mean = tuple(float(m) for m in pixels.mean(axis=0))
    std = tuple(float(max(s, 1e-3)) for s in pixels.std(axis=0)) if normalization == "standardize" \
        else (1.0,) * channels
    return mean, std


def _per_channel(name, values, channels):
    values = tuple(float(v) for v in values)
    if len(values) == 1:
        return values * channels
    if len(values) != channels:
        raise ValueError(f"the checkpoint's {name} must have one value or one per channel ({channels}); received "
                         f"{list(values)}.")
    return values


def centre_crop(x, size):
    height, width = x.shape[-3], x.shape[-2]
    top, left = (height - size[0]) // 2, (width - size[1]) // 2
    return x[..., top:top + size[0], left:left + size[1], :] if (height, width) != tuple(size) else x


def record_path(model_path):
    """``saved_models/lenet5.int8.tflite`` or ``.../lenet5/1`` -> ``saved_models/lenet5.preprocessing.json``."""
    path = os.fspath(model_path).rstrip("/\\")
    if os.path.isdir(path) and os.path.basename(path).isdigit():
        path = os.path.dirname(path)  # a SavedModel version folder; the record sits beside the model folder
    for suffix in (*MODEL_SUFFIXES, *QUANTIZATION_TAGS):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    return path + SUFFIX


def save(record, path, *, overwrite=True):
    """Write ``record`` to ``path`` whole (:func:`keras_cnn._files.write_whole`)."""
    from keras_cnn import _files

    def write(staging):
        with open(staging, "w", encoding="utf-8") as file:
            json.dump(record.to_json(), file, indent=2)

    return _files.write_whole(path, write, overwrite=overwrite)


def load(path):
    """The record in ``path``; a ``ValueError`` naming the file and what is wrong with it (not JSON, a missing
    field, a field of the wrong type or out of range: std 0 would divide by zero, NaN would predict NaN)."""
    values = _read_json(path)
    fields = {f.name for f in dataclasses.fields(Preprocessing)}
    missing = [name for name in REQUIRED if name not in values]
    if missing:
        raise ValueError(f"{os.fspath(path)!r} is not a complete preprocessing record: missing field(s) "
                         f"{', '.join(missing)} ({_REWRITE}).")
    try:
        checked = _checked({k: v for k, v in values.items() if k in fields})
    except (TypeError, ValueError) as error:
        raise type(error)(f"{os.fspath(path)!r} is not a valid preprocessing record: {error} ({_REWRITE}).") \
            from None
    return Preprocessing(**checked)


REQUIRED = ("input_size", "channels", "resize", "mean", "std", "class_names")
_REWRITE = "keras-cnn train and keras-cnn export write it; write it again or pass --preprocessing with another"


def _read_json(path):
    """The JSON object in ``path`` (``ValueError`` naming the file when it is not one)."""
    try:
        with open(path, encoding="utf-8") as file:
            values = json.load(file)
    except UnicodeDecodeError as error:
        raise ValueError(f"{os.fspath(path)!r} is not a preprocessing record: not UTF-8 text ({error.reason} at "
                         f"byte {error.start}).") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{os.fspath(path)!r} is not a readable preprocessing record (truncated or corrupt: "
                         f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}).") from None
    if not isinstance(values, dict):
        raise ValueError(f"{os.fspath(path)!r} is not a preprocessing record: it must hold a JSON object; "
                         f"received a {type(values).__name__}.")
    return values


def _checked(values):
    """The record's fields with their types and ranges checked (raises naming the first bad field)."""
    out = dict(values)
    out["channels"] = _positive_int("channels", values["channels"])
    for name in ("input_size", "resize"):
        out[name] = tuple(_positive_int(f"{name}[{i}]", v) for i, v in enumerate(_sequence(name, values[name], 2)))
    if out["resize"][0] < out["input_size"][0] or out["resize"][1] < out["input_size"][1]:
        raise ValueError(f"field resize must be at least input_size {list(out['input_size'])}; received "
                         f"{list(out['resize'])}")
    for name in ("mean", "std"):
        out[name] = tuple(_finite(f"{name}[{i}]", v, positive=name == "std")
                          for i, v in enumerate(_sequence(name, values[name], out["channels"])))
    names = _sequence("class_names", values["class_names"])
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"field class_names must be a non-empty list of strings; received {reprlib.repr(names)}")
    out["class_names"] = tuple(names)
    if "normalization" in values:
        _validate.check_choice("field normalization", values["normalization"], NORMALIZATIONS[1:])
    if values.get("model") is not None and not isinstance(values["model"], str):
        raise TypeError(f"field model must be a string or null; received {values['model']!r}")
    if values.get("data") is not None and not isinstance(values["data"], dict):
        raise TypeError(f"field data must be an object or null; received {values['data']!r}")
    task = values.get("task", "multiclass")
    _validate.check_choice("field task", task, TASKS)
    if values.get("thresholds") is not None:
        if task != "multilabel":
            raise ValueError(f"field thresholds belongs to a multilabel record; received task {task!r}")
        out["thresholds"] = _thresholds(values["thresholds"], len(out["class_names"]))
    return out


def _thresholds(values, classes):
    """One decision threshold per class, each a number in [0, 1] (sigmoid scores lie there)."""
    values = _sequence("thresholds", values, classes)
    return tuple(_finite(f"thresholds[{i}]", v, low=0.0, high=1.0) for i, v in enumerate(values))


def _sequence(name, value, length=None):
    if not isinstance(value, list) or (length is not None and len(value) != length):
        count = f"{length} " if length is not None else ""
        raise ValueError(f"field {name} must be a list of {count}values; received {reprlib.repr(value)}")
    return value


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"field {name} must be an integer >= 1; received {value!r}")
    return value


def _finite(name, value, positive=False, low=None, high=None):
    """A finite number (> 0 with ``positive``: a std divides; within [low, high] when given)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    within = ok and (low is None or value >= low) and (high is None or value <= high)
    if not within or (positive and value <= 0):
        bound = " > 0" if positive else f" in [{low}, {high}]" if low is not None else ""
        raise ValueError(f"field {name} must be a finite number{bound}; received {value!r}")
    return float(value)


def locate(model_path, explicit=None):
    """The path of the record given by ``explicit``, else of the one beside ``model_path``; None when there is
    none."""
    if explicit:
        if not os.path.isfile(explicit):
            raise ValueError(f"--preprocessing must be an existing {SUFFIX} file; received {explicit!r}.")
        return explicit
    path = record_path(model_path)
    return path if os.path.isfile(path) else None


def find(model_path, explicit=None, *, model=None):
    """The record given by ``explicit``, else the one beside ``model_path``; None when there is none. With
    ``model`` (a Keras model) it must fit it (:func:`check_fits`)."""
    path = locate(model_path, explicit) if model_path or explicit else None
    if path is None:
        return None
    record = load(path)
    if model is not None:
        check_fits(record, path, repr(os.fspath(model_path)) if model_path else f"--model {model.name}",
                   tuple(model.inputs[0].shape[1:]), model.outputs[0].shape[-1])
    return record


def check_fits(record, path, model, input_shape, classes):
    """A ``ValueError`` naming the record ``path`` and ``model`` (the model's file, quoted, or another name of
    it) when the record's channels, input size (where the model fixes one) or class count differ from the
    model's ``input_shape`` ``(H, W, C)`` (None for a free side) and ``classes`` (None: unknown)."""
    *size, channels = input_shape
    problems = []
    if channels is not None and record.channels != channels:
        problems.append(f"channels {record.channels} (the model takes {channels})")
    if any(side is not None and side != own for side, own in zip(size, record.input_size)):
        problems.append(f"input_size {_size(record.input_size)} (the model takes "
                        f"{_size(['any' if side is None else side for side in size])})")
    if classes is not None and len(record.class_names) != classes:
        problems.append(f"{len(record.class_names)} class names (the model outputs {classes} classes)")
    if problems:
        raise ValueError(f"the preprocessing record {os.fspath(path)!r} does not fit the model {model}: "
                         f"{'; '.join(problems)}. It was written for another model; "
                         f"pass --preprocessing with the record written with this one.")


def _size(pair):
    return f"{pair[0]}x{pair[1]}"
