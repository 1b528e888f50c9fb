"""Test-time evaluation: dense (FCN), multi-crop and multi-scale prediction (seed 003 §2.2.1, §3.2).

Images may be one array ``(N, H, W, C)`` or a list of ``(H, W, C)`` arrays of different sizes; every function
returns class posteriors of shape ``(N, classes)``. The model is used as given: inputs are expected already
preprocessed for it (same scaling as in training).
"""

import numbers

import keras
import numpy as np
import tensorflow as tf

from keras_cnn import _validate
from keras_cnn.fcn import to_fcn

REDUCTIONS = ("mean", "max")


def dense_predict(model, images, scales=(256, 384, 512), flip=True, reduce="mean", batch_size=8, jit_compile=False):
    """Dense evaluation (VGG §3.2): FCN pass on each image rescaled so its shorter side is each scale.

    The class posterior maps are reduced over positions (``reduce`` = "mean" or "max"), then averaged over the
    scales and, with ``flip``, the horizontal flip. ``model`` is converted with :func:`keras_cnn.to_fcn` unless
    it is already fully convolutional (4-D output). ``jit_compile=True`` runs the FCN compiled by XLA, once per
    distinct batch shape: on CPU it is faster at small batches (docs/benchmarks.md) but each new image size costs
    a compilation.
    """
    _validate.check_model(model)
    _validate.check_bool("jit_compile", jit_compile)
    _validate.check_choice("reduce", reduce, REDUCTIONS)
    _validate.check_bool("flip", flip)
    _validate.check_int("batch_size", batch_size, minimum=1)
    scales = _check_scales(scales, _native_size(model))
    images = _as_list(images, model)
    fcn = model if len(model.output_shape) == 4 else to_fcn(model)
    if jit_compile:
        fcn = _compiled(fcn)
    total = 0.0
    for scale in scales:
        views = [_resize_shorter(image, scale) for image in images]
        if flip:  # in the same batches as the originals: fewer, fuller batches run faster on CPU
            views += [view[:, ::-1] for view in views]
        maps = _predict_grouped(fcn, views, batch_size)
        total = total + np.stack([m.mean(axis=(0, 1)) if reduce == "mean" else m.max(axis=(0, 1))
                                  for m in maps]).reshape(len(views) // len(images), len(images), -1).sum(0)
    return total / (len(scales) * (2 if flip else 1))


def multi_crop_predict(model, images, crops=10, crop_size=None, grid=None, resize=None, batch_size=32):
    """Multi-crop evaluation: average the model's posteriors over crops of each image.

    ``crops=10`` is AlexNet's four corners and centre plus their horizontal flips; ``crops=5`` omits the
    flips; ``crops=1`` is the centre crop. ``grid=g`` instead takes a g×g regular grid of crops and their flips
    (VGG's 5×5×2). ``crop_size`` defaults to the model's input size; ``resize`` (optional) first rescales each
    image's shorter side; an image smaller than the crop is scaled up to it.
    """
    _validate.check_model(model)
    crop_size = _check_crop_size(crop_size, _native_size(model))
    _validate.check_int("batch_size", batch_size, minimum=1)
    if resize is not None:
        _validate.check_int("resize", resize, minimum=1)
    offsets = _crop_offsets(crops, grid)
    views, results = [], []
    for image in _as_list(images, model):
        if resize is not None:
            image = _resize_shorter(image, resize)
        if min(image.shape[:2]) < crop_size:
            image = _resize_shorter(image, crop_size)
        views.append(_crops(image, crop_size, offsets))
        if sum(map(len, views)) >= 4 * batch_size:  # the crops of many images share batches; memory stays bounded
            results.append(_mean_per_image(model, views, batch_size))
            views = []
    if views:
        results.append(_mean_per_image(model, views, batch_size))
    return np.concatenate(results)


def _mean_per_image(model, views, batch_size):
    """Posteriors of the stacked crops of several images, averaged per image (each has the same crop count)."""
    probabilities = _predict(model, np.concatenate(views), batch_size)
    return probabilities.reshape(len(views), len(views[0]), -1).mean(axis=1)


def multi_scale_predict(model, images, scales=(256, 384, 512), crops=10, grid=None, batch_size=32):
    """Multi-crop evaluation at several test scales Q (shorter side), averaged over the scales (VGG §3.2)."""
    _validate.check_model(model)
    scales = _check_scales(scales, _native_size(model))
    return np.mean([multi_crop_predict(model, images, crops=crops, grid=grid, resize=scale,
                                       batch_size=batch_size) for scale in scales], axis=0)


def dense_and_crop_predict(model, images, scales=(256, 384, 512), crops=10, grid=None, flip=True):
    """VGG's combination: the mean of dense and multi-scale multi-crop posteriors (Table 5, last rows)."""
    dense = dense_predict(model, images, scales=scales, flip=flip)
    return (dense + multi_scale_predict(model, images, scales=scales, crops=crops, grid=grid)) / 2.0


def _as_list(images, model):
    """``images`` as a list of float32 ``(H, W, C)`` arrays with the model's channel count."""
    is_array = isinstance(images, np.ndarray)
    if not (is_array and images.ndim == 4 and len(images)) and not (
            isinstance(images, (list, tuple)) and images and all(np.ndim(im) == 3 for im in images)):
        raise ValueError(
            f"images must be an (N, H, W, C) array with N >= 1 or a non-empty list of (H, W, C) arrays; received "
            f"{type(images).__name__}{' of shape ' + str(images.shape) if is_array else ''}."
        )
    try:
        images = [np.asarray(image, dtype="float32") for image in images]
    except (TypeError, ValueError):
        raise TypeError(f"images must hold numbers; received {np.asarray(images[0]).dtype} values.") from None
    channels = model.input_shape[-1]
    wrong = [image.shape for image in images if image.shape[-1] != channels]
    if wrong:
        raise ValueError(f"images must have {channels} channel(s), as the model's input; received an image of shape "
                         f"{wrong[0]}.")
    return images


def _native_size(model):
    height, width = model.input_shape[1:3]
    if height is None or width is None:
        return None
    if height != width:
        raise ValueError(f"model input must be square for crop evaluation; received {model.input_shape[1:3]}.")
    return height


def _check_crop_size(crop_size, native):
    """The model's own input size unless it accepts any size; then ``crop_size`` is required."""
    if crop_size is None:
        if native is None:
            raise ValueError("crop_size is required when the model's input size is not fixed; received None.")
        return native
    _validate.check_int("crop_size", crop_size, minimum=1)
    if native is not None and crop_size != native:
        raise ValueError(f"crop_size must be the model's fixed input size {native} (or None); received {crop_size}.")
    return crop_size


def _check_scales(scales, native):
    if isinstance(scales, numbers.Integral):
        scales = (scales,)
    if not isinstance(scales, (list, tuple, np.ndarray)):
        raise TypeError(f"scales must be a shorter-side size or a sequence of them, e.g. (256, 384, 512); received "
                        f"{scales!r}.")
    scales = tuple(_validate.check_int("scales", s, minimum=1) for s in scales)
    if not scales:
        raise ValueError("scales must name at least one shorter-side size; received ().")
    if native is not None and min(scales) < native:
        raise ValueError(f"scales must be >= the model's input size {native}; received {scales}.")
    return scales


def _resize_shorter(image, size):
    height, width = image.shape[:2]
    ratio = size / min(height, width)
    target = (max(size, round(height * ratio)), max(size, round(width * ratio)))
    if target == (height, width):
        return np.asarray(image, dtype="float32")
    return tf.image.resize(image, target, method="bilinear", antialias=ratio < 1).numpy()


def _compiled(model):
    """``model``'s inference call compiled by XLA, callable as ``model(x, training=False)``."""
    function = tf.function(lambda x: model(x, training=False), jit_compile=True, reduce_retracing=True)
    return lambda x, training=False: function(x)


def _predict_grouped(model, images, batch_size):
    """Predict images of possibly different sizes, batching those of equal size together."""
    out = [None] * len(images)
    by_shape = {}
    for index, image in enumerate(images):
        by_shape.setdefault(image.shape, []).append(index)
    for indices in by_shape.values():
        batch = np.stack([images[i] for i in indices])
        for i, value in zip(indices, _predict(model, batch, batch_size)):
            out[i] = value
    return out


def _predict(model, batch, batch_size):
    return np.concatenate([keras.ops.convert_to_numpy(model(batch[i:i + batch_size], training=False))
                           for i in range(0, len(batch), batch_size)])


def _crop_offsets(crops, grid):
    """Relative (y, x) crop positions in [0, 1] and whether flips are added."""
    if grid is not None:
        g = _validate.check_int("grid", grid, minimum=1)
        steps = np.linspace(0.0, 1.0, g) if g > 1 else np.array([0.5])
        return [(y, x) for y in steps for x in steps], True
    _validate.check_choice("crops", crops, (1, 5, 10))
    if crops == 1:
        return [(0.5, 0.5)], False
    return [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0), (0.5, 0.5)], crops == 10


def _crops(image, size, offsets):
    positions, flips = offsets
    height, width = image.shape[:2]
    views = [image[round(y * (height - size)):][:size, round(x * (width - size)):][:, :size]
             for y, x in positions]
    if flips:
        views += [view[:, ::-1] for view in views]
    return np.stack(views).astype("float32")
