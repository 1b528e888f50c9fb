"""The preprocessing recorded with every trained model, so evaluation, prediction and exports feed it alike.

The record is a JSON file ``<stem>.preprocessing.json`` beside the model: ``saved_models/lenet5.keras`` and its
exports ``saved_models/lenet5/1/``, ``lenet5.tflite``, ``lenet5.int8.tflite``, ``lenet5.onnx`` all share
``saved_models/lenet5.preprocessing.json``. Images enter as floats in [0, 1] of any size and channel count; they
are brought to the model's channels, resized to ``resize``, centre-cropped to ``input_size`` when ``resize`` is
larger, and normalised per channel as ``(x - mean) / std`` (normalization "checkpoint": the mean and std of the
upstream checkpoint the weights came from). Normalisation lives outside the model (no Lambda layers), so
deployed models expect these inputs, as the TFLite sidecar's byte-level ``preprocessing`` says.
"""

import dataclasses
import json
import os

import numpy as np

from keras_cnn import _validate
from keras_cnn._images import match_channels  # the one channel rule (also for files)

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
           statistics=None):
    """A record for a model input ``(height, width, channels)``; ``images`` (train, [0, 1]) give the statistics
    of "mean" and "standardize", ``statistics`` (``(mean, std)``, one value or one per channel) those of
    "checkpoint"."""
    height, width, channels = input_shape
    _validate.check_choice("normalization", normalization, NORMALIZATIONS[1:])
    mean, std = _statistics(normalization, images, channels, statistics)
    resize = tuple(resize or (height, width))
    if resize[0] < height or resize[1] < width:
        raise ValueError(f"resize must be at least the model input {height}x{width}; received {resize}.")
    return Preprocessing((height, width), channels, resize, mean, std, tuple(str(n) for n in class_names),
                         normalization, model, data)


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
    with open(path, encoding="utf-8") as file:
        values = json.load(file)
    fields = {f.name for f in dataclasses.fields(Preprocessing)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in fields}
    return Preprocessing(**values)


def find(model_path, explicit=None):
    """The record given by ``explicit``, else the one beside ``model_path``; None when there is none."""
    path = explicit or record_path(model_path)
    if explicit and not os.path.isfile(explicit):
        raise ValueError(f"--preprocessing must be an existing {SUFFIX} file; received {explicit!r}.")
    return load(path) if os.path.isfile(path) else None
