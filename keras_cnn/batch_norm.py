"""Re-estimate BatchNormalization statistics from data: ``recalibrate_batch_norm``.

A short or high-learning-rate training (fine-tuning on a few hundred images) leaves each BN layer's moving averages
far from the statistics its inputs now have: training accuracy is high while inference-mode outputs are near
chance. Recomputing the statistics over the training images fixes that without touching any weight, as
PreciseBN (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021; fvcore ``update_bn_stats``) and PyTorch's
``torch.optim.swa_utils.update_bn`` (``momentum=None``: a cumulative average) do.
"""

import contextlib

import keras
import numpy as np

from keras_cnn import _validate

DEFAULT_BATCH_SIZE = 32


def batch_norm_layers(model):
    """Every ``keras.layers.BatchNormalization`` in ``model``, nested models and layers included, once each."""
    layers = model._flatten_layers(include_self=False, recursive=True)
    unique = {id(layer): layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)}
    return list(unique.values())


def recalibrate_batch_norm(model, data, *, steps=None, batch_size=None, verbose=False):
    """Set every BatchNormalization layer's moving mean and variance to the population statistics of ``data``.

    Each batch runs forward with the BN layers alone in training mode (they normalise with the batch's statistics,
    as in training; dropout and stochastic depth stay off), and each layer's per-channel mean and variance are
    combined over the batches exactly, weighted by their sizes (Chan et al.'s parallel variance): the result is
    the mean and the (biased, as Keras normalises with) variance over all images, not an exponential average.
    Nothing else changes: weights, ``momentum`` and ``trainable`` are as before, frozen BN layers included.

    Args:
        model: a built ``keras.Model`` (nested models and layers holding BN layers included).
        data: images as an array ``(N, H, W, C)``, or a ``tf.data.Dataset`` (any iterable) of image batches or
            of ``(images, labels[, weights])`` batches, preprocessed as for training but without augmentation.
        steps: use at most this many batches (default: all).
        batch_size: the batch size for array ``data`` (default 32); larger batches are closer to the population.
        verbose: print one line when done.

    Returns:
        ``{"layers": BN layers updated, "images": images used, "batches": batches used}``.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; received {type(model).__name__}.")
    if steps is not None:
        _validate.check_int("steps", steps, minimum=1)
    if batch_size is not None:
        _validate.check_int("batch_size", batch_size, minimum=1)
    layers = batch_norm_layers(model)
    if not layers:
        return {"layers": 0, "images": 0, "batches": 0}
    moments = [_Moments() for _ in layers]
    batches = 0
    with _batch_statistics_only(layers):
        for images in _batches(data, batch_size, steps):
            model(images, training=False)
            for layer, moment in zip(layers, moments):  # with momentum 0 the moving values are the batch's
                moment.add(len(images), layer.moving_mean.numpy(), layer.moving_variance.numpy())
            batches += 1
    if not batches:
        raise ValueError("data yielded no images to recalibrate the BatchNormalization statistics with.")
    for layer, moment in zip(layers, moments):
        layer.moving_mean.assign(moment.mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(moment.variance.astype(layer.moving_variance.dtype))
    summary = {"layers": len(layers), "images": int(moments[0].count), "batches": batches}
    if verbose:
        print(f"BatchNorm recalibrated: {summary['layers']} layer(s) from {summary['images']} images "
              f"in {batches} batch(es)", flush=True)
    return summary


class _Moments:
    """Per-channel count, mean and sum of squared deviations, merged batch by batch (Chan, Golub & LeVeque 1979)."""

    def __init__(self):
        self.count, self.mean, self.squares = 0, 0.0, 0.0

    def add(self, count, mean, variance):
        mean, variance = np.asarray(mean, np.float64), np.asarray(variance, np.float64)
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * count / total
        self.squares = self.squares + variance * count + delta ** 2 * self.count * count / total
        self.count = total

    @property
    def variance(self):
        return np.asarray(self.squares / self.count)


def _batches(data, batch_size, steps):
    """Image batches of ``data`` (labels and weights dropped), at most ``steps`` of them."""
    if isinstance(data, (list, tuple)) or hasattr(data, "__array__") and not hasattr(data, "element_spec"):
        images = np.asarray(data[0] if isinstance(data, (list, tuple)) else data)
        if images.ndim < 2 or not len(images):
            raise ValueError(f"data must hold a batch of images (N, H, W, C); received an array of shape "
                             f"{images.shape}.")
        size = batch_size or DEFAULT_BATCH_SIZE
        source = (images[start:start + size] for start in range(0, len(images), size))
    else:
        if batch_size is not None:
            raise ValueError(f"batch_size applies to array data; a dataset is batched already; received "
                             f"batch_size={batch_size}.")
        if not hasattr(data, "__iter__"):
            raise TypeError(f"data must be an array of images or a dataset of image batches; received "
                            f"{type(data).__name__}.")
        source = (batch[0] if isinstance(batch, (list, tuple)) else batch for batch in data)
    for index, batch in enumerate(source):
        if steps is not None and index >= steps:
            return
        yield batch


@contextlib.contextmanager
def _batch_statistics_only(layers):
    """The BN ``layers`` in training mode whatever the call says, with momentum 0 (their moving values become each
    batch's statistics), restored afterwards. Only they switch: a model called with ``training=False`` keeps
    dropout and stochastic depth off, which would otherwise change the statistics downstream."""
    saved = [(layer.momentum, layer.trainable) for layer in layers]

    def training_call(call):
        def forced(inputs, training=None, mask=None):
            return call(inputs, training=True, mask=mask)
        return forced

    try:
        for layer in layers:
            layer.momentum = 0.0
            layer.trainable = True  # a frozen BN layer (Keras 3) ignores training=True
            object.__setattr__(layer, "call", training_call(layer.call))
        yield
    finally:
        for layer, (momentum, trainable) in zip(layers, saved):
            if "call" in vars(layer):
                object.__delattr__(layer, "call")
            layer.momentum = momentum
            layer.trainable = trainable


def batch_statistics_predict(model, images):
    """``model``'s outputs on ``images`` with every BN layer normalising with the batch's own statistics (the rest
    in inference mode); the moving statistics are left as they were. Compared with the inference-mode outputs it
    shows whether the moving statistics still fit the weights (``keras-cnn train``'s summary)."""
    layers = batch_norm_layers(model)
    saved = [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in layers]
    try:
        with _batch_statistics_only(layers):
            return keras.ops.convert_to_numpy(model(images, training=False))
    finally:
        for layer, (mean, variance) in zip(layers, saved):
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
