"""Weights by canonical name: the one way weights move between builds of one architecture.

A model's weights are keyed ``<layer>/<variable>`` as in the plain build of its architecture (``conv1/kernel``,
``conv1_bn/gamma``), whatever form the build takes:

- a memory-efficient DenseNet's ``<p>_concat_conv<s>`` (:class:`keras_cnn.layers.ConcatBNReLUConv`) holds the
  weights of ``<p>_bn<s>`` and ``<p>_conv<s>``;
- a stochastic-depth residual (:class:`keras_cnn.layers.StochasticDepth`) holds its branch's layers;
- a grouped convolution in split form (``<base>_split`` -> ``<base>_g<i>``, ``<base>_g<i>_bn``, see
  :mod:`keras_cnn.layers.group_conv`) holds group ``i``'s output channels of ``<base>`` and ``<base>_bn``.

So weights move between ``memory_efficient`` on and off, between the native and split forms of ShuffleNet v1,
and between builds that differ only in weightless layers (drop path, dropout), by name and with every shape
checked, instead of by Keras's layer order.
"""

import dataclasses

import keras
import numpy as np

from keras_cnn.layers.channel_shuffle import ChannelSplit
from keras_cnn.layers.concat_bn_relu_conv import ConcatBNReLUConv


@dataclasses.dataclass(frozen=True)
class Slot:
    """Where one variable's values live in the canonical weights: ``key``, or part ``index`` of ``parts`` of it
    along the last (output-channel) axis."""

    variable: object
    key: str
    index: int = 0
    parts: int = 1


def slots(model):
    """One :class:`Slot` per variable of ``model`` (trainable and not), in layer order."""
    layers = list(_leaf_layers(model))
    groups = _split_groups(layers)
    found = []
    for layer in layers:
        if not layer.weights:
            continue
        if isinstance(layer, ConcatBNReLUConv):
            found += _concat_conv_slots(layer)
            continue
        base, index, parts = _group_member(layer.name, groups)
        found += [Slot(v, f"{base}/{_variable_name(layer, v)}", index, parts) for v in layer.weights]
    _check_unique(model, found)
    return found


def canonical_weights(model):
    """``{key: array}`` of every weight of ``model`` under its canonical name (split groups concatenated)."""
    parts = {}
    for slot in slots(model):
        parts.setdefault(slot.key, [None] * slot.parts)[slot.index] = np.asarray(slot.variable.numpy())
    return {key: values[0] if len(values) == 1 else np.concatenate(values, axis=-1) for key, values in parts.items()}


def canonical_shapes(model):
    """``{key: shape}`` of the canonical weights, without reading their values."""
    return _shapes(slots(model))


def _shapes(found):
    shapes = {}
    for slot in found:
        shape = tuple(slot.variable.shape)
        shapes[slot.key] = (*shape[:-1], shape[-1] * slot.parts) if shape else shape
    return shapes


def assign(model, weights, *, keep=()):
    """Set every variable of ``model`` from canonical ``weights``; keys in ``keep`` (and absent from ``weights``)
    stay as they are. Raises ``ValueError`` naming the first missing or misshapen key."""
    found = slots(model)
    for key, shape in _shapes(found).items():
        if key in keep:
            continue
        if key not in weights:
            raise ValueError(f"no weight {key!r} (shape {shape}) for model {model.name!r}.")
        if tuple(np.shape(weights[key])) != shape:
            raise ValueError(f"weight {key!r} has shape {tuple(np.shape(weights[key]))}; model {model.name!r} "
                             f"needs {shape}.")
    for slot in found:
        if slot.key in keep:
            continue
        value = weights[slot.key]
        if slot.parts > 1:
            value = np.split(value, slot.parts, axis=-1)[slot.index]
        slot.variable.assign(np.asarray(value, dtype=slot.variable.dtype))


def _variable_name(layer, variable):
    # Keras 3 names a variable by its own short name ("kernel"); the path adds the layer's name scope
    return variable.path.rsplit("/", 1)[-1] if variable.path else variable.name


def _concat_conv_slots(layer):
    prefix, _, suffix = layer.name.rpartition("_concat_conv")
    names = {id(v): f"{prefix}_bn{suffix}" for v in layer.bn.weights}
    names.update({id(v): f"{prefix}_conv{suffix}" for v in layer.conv.weights})
    return [Slot(v, f"{names[id(v)]}/{_variable_name(layer, v)}") for v in layer.weights]


def _leaf_layers(model):
    """The layers of ``model``, looking through nested models and wrappers (stochastic depth wraps its residual
    branch, whose layers keep the names they have in the plain build)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Wrapper):
            layer = layer.layer
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def _split_groups(layers):
    """``{base: g}`` for every split-form grouped convolution (a ``ChannelSplit`` named ``<base>_split``)."""
    return {layer.name[: -len("_split")]: layer.splits for layer in layers
            if isinstance(layer, ChannelSplit) and layer.name.endswith("_split")}


def _group_member(name, groups):
    """``(canonical layer name, group index, groups)`` for ``<base>_g<i>[_bn]`` of a split group, else the name."""
    for base, count in groups.items():
        head = f"{base}_g"
        if not name.startswith(head):
            continue
        number, _, suffix = name[len(head):].partition("_")
        if number.isdigit() and 1 <= int(number) <= count and suffix in ("", "bn"):
            return base + (f"_{suffix}" if suffix else ""), int(number) - 1, count
    return name, 0, 1


def _check_unique(model, found):
    seen = {}
    for slot in found:
        if (slot.key, slot.index) in seen:
            raise ValueError(f"model {model.name!r} has two weights named {slot.key!r}; keras_cnn needs unique "
                             "layer and variable names to move weights by name.")
        seen[(slot.key, slot.index)] = slot
