"""Rules that name, for every canonical keras_cnn weight (``layer/variable``, :mod:`keras_cnn._weights`), the
upstream tensor(s) it comes from and how their layout changes.

A family's converter is a function ``mapping(keys) -> {key: Source}`` over the canonical keys of the built model;
most are written with :func:`torch_rule` or :func:`keras_rule` and a function translating a keras_cnn layer name
into the upstream module/layer name. Names are translated by rules, never matched by position.
"""

import dataclasses
import re
from typing import Callable

import numpy as np

# keras_cnn variable -> PyTorch parameter/buffer suffix
TORCH_VARIABLES = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
                   "moving_mean": "running_mean", "moving_variance": "running_var"}


def torch_layout(array, shape):
    """A PyTorch tensor in Keras's layout for a variable of ``shape``: ``(O, I, kh, kw)`` convolutions become
    ``(kh, kw, I, O)``, depthwise ``(C*m, 1, kh, kw)`` become ``(kh, kw, C, m)``, ``(out, in)`` matrices
    ``(in, out)``; vectors stay."""
    if array.ndim == 4:
        out_channels, in_channels, height, width = array.shape
        if in_channels == 1 and len(shape) == 4 and shape[3] != out_channels and out_channels % shape[2] == 0:
            return array.transpose(2, 3, 0, 1).reshape(height, width, shape[2], out_channels // shape[2])
        return array.transpose(2, 3, 1, 0)
    if array.ndim == 2:
        return array.T
    return array


def identity(array, shape):
    return array


@dataclasses.dataclass(frozen=True)
class Source:
    """The upstream tensors ``names`` of one keras_cnn weight and ``transform(*arrays, shape) -> array``."""

    names: tuple
    transform: Callable = identity

    def __call__(self, tensors, shape):
        return np.asarray(self.transform(*(tensors[n] for n in self.names), shape), dtype=np.float32)


def torch(name):
    """One PyTorch tensor, moved to Keras's layout (:func:`torch_layout`)."""
    return Source((name,), torch_layout)


def flattened_dense(name, channels, height, width):
    """A PyTorch ``Linear`` after ``flatten`` of a ``(C, H, W)`` map (VGG, AlexNet) for Keras's ``(H, W, C)``
    flatten: the input rows are reordered."""
    def transform(array, shape):
        out = array.shape[0]
        return array.reshape(out, channels, height, width).transpose(2, 3, 1, 0).reshape(-1, out)
    return Source((name,), transform)


def folded_bias_mean(mean_name, bias_name):
    """A BatchNorm moving mean absorbing the bias of the convolution before it (``BN(conv(x) + b)`` with mean m
    equals ``BN(conv(x))`` with mean ``m - b``): keras.applications' ResNet v1 convolutions carry biases."""
    return Source((mean_name, bias_name), lambda mean, bias, shape: mean - bias)


def input_channels_reversed(source):
    """A first convolution trained on BGR inputs, for RGB inputs (keras.applications' "caffe" preprocessing)."""
    return Source(source.names, lambda *arrays: source.transform(*arrays[:-1], arrays[-1])[:, :, ::-1, :])


def split_key(key):
    layer, _, variable = key.rpartition("/")
    return layer, variable


def torch_rule(rename, *, variables=None):
    """A mapping from ``rename(layer) -> upstream module path`` (None: no rule): ``<path>.<parameter>`` per
    variable (:data:`TORCH_VARIABLES`, updated by ``variables``). ``rename`` may also return a ``dict``
    ``{variable: Source}`` for a layer whose tensors do not follow the common pattern."""
    names = {**TORCH_VARIABLES, **(variables or {})}

    def mapping(keys):
        return {key: _torch_source(rename, names, key) for key in keys}
    return mapping


def _torch_source(rename, names, key):
    layer, variable = split_key(key)
    path = rename(layer)
    if path is None:
        return None
    if isinstance(path, dict):
        return path.get(variable)
    return torch(f"{path}.{names[variable]}")


def keras_rule(rename):
    """A mapping for Keras checkpoints: ``<rename(layer)>/<variable>``, the layout unchanged."""
    def mapping(keys):
        result = {}
        for key in keys:
            layer, variable = split_key(key)
            path = rename(layer)
            result[key] = None if path is None else path.get(variable) if isinstance(path, dict) \
                else Source((f"{path}/{variable}",))
        return result
    return mapping


def substitute(rules):
    """``rename`` from ``[(regex, replacement), ...]``: the first full match wins (``re.sub`` replacement; a
    callable gets the match); no match -> None."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]

    def rename(layer):
        for pattern, replacement in compiled:
            match = pattern.fullmatch(layer)
            if match:
                return replacement(match) if callable(replacement) else match.expand(replacement)
        return None
    return rename
