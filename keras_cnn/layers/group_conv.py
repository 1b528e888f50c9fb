"""Grouped convolution in two interchangeable forms (seed 003 §3.3), and weight transfer between them.

``"native"`` is one ``Conv2D(groups=g)`` + batch norm + activation. ``"split"`` is channel split -> per group a
plain ``Conv2D`` + batch norm + activation -> concatenation: the same function with the same parameters (batch
norm and the activation act per channel, so they commute with the concatenation), built only from operators that
every TFLite runtime and delegate quantizes. TFLite had no grouped CONV_2D for years and full-integer conversion
of one failed up to at least TF 2.13 (tensorflow/tensorflow#40044, #61760); keeping batch norm inside each group
lets the converter fold it into that group's convolution (per-channel int8 scales) instead of leaving a
MUL/ADD on the concatenated tensor. Train in either form, copy weights with
:func:`transfer_group_conv_weights`, export the split form.
"""

import re

import keras
import numpy as np

from keras_cnn import _validate
from keras_cnn.layers.channel_shuffle import ChannelSplit
from keras_cnn.layers.conv import BN_EPSILON, conv_bn_act

GROUP_CONV_FORMS = ("native", "split")
_MEMBER = re.compile(r"^(?P<base>.+)_g(?P<index>\d+)(?P<suffix>_bn)?$")


def group_conv_bn_act(x, filters, kernel_size, *, groups, name, form="native", activation="relu",
                      epsilon=BN_EPSILON):
    """Grouped convolution (no bias), batch normalisation and activation.

    ``form="native"``: layers ``name`` (grouped ``Conv2D``), ``name_bn``, ``name_<activation>``.
    ``form="split"``: ``name_split``, then for group ``i`` ``name_g<i>`` (``filters / groups`` maps),
    ``name_g<i>_bn``, ``name_g<i>_<activation>``, and the concatenation ``name_concat``. With ``groups=1`` both
    are a plain convolution block.
    """
    _validate.check_choice("form", form, GROUP_CONV_FORMS)
    if groups == 1 or form == "native":
        return conv_bn_act(x, filters, kernel_size, groups=groups, batch_norm=True, activation=activation,
                           epsilon=epsilon, name=name)
    if filters % groups:
        raise ValueError(f"filters={filters} must be a multiple of groups={groups} ({name!r}).")
    parts = ChannelSplit(groups, name=f"{name}_split")(x)
    outputs = [conv_bn_act(part, filters // groups, kernel_size, batch_norm=True, activation=activation,
                           epsilon=epsilon, name=f"{name}_g{index}")
               for index, part in enumerate(parts, start=1)]
    return keras.layers.Concatenate(name=f"{name}_concat")(outputs)


def transfer_group_conv_weights(source, target):
    """Copy every weight of ``source`` into ``target``, two builds of one model that differ only in ``form``.

    Layers with the same name are copied as they are. The weights of a native grouped convolution and of its
    batch norm are cut along their last (output-channel) axis into the ``g`` groups (group ``i`` owns output
    channels ``i * C_out / g ...``), and the split groups' weights are concatenated back for the native form.
    """
    layers = {layer.name: layer for layer in source.layers}
    for layer in target.layers:
        if not layer.weights:
            continue
        if layer.name in layers and _same_shapes(layers[layer.name], layer):
            layer.set_weights(layers[layer.name].get_weights())
        elif (member := _MEMBER.match(layer.name)) and _native_name(member) in layers:
            whole = layers[_native_name(member)]
            groups = whole.weights[0].shape[-1] // layer.weights[0].shape[-1]
            index = int(member["index"]) - 1
            layer.set_weights([np.split(w, groups, axis=-1)[index] for w in whole.get_weights()])
        elif members := _split_members(layer.name, layers):
            parts = [m.get_weights() for m in members]
            layer.set_weights([np.concatenate(ws, axis=-1) for ws in zip(*parts)])
        else:
            raise ValueError(f"transfer_group_conv_weights: no weights in the source model for layer "
                             f"{layer.name!r}; the two models must be builds of the same architecture.")


def _native_name(member):
    return member["base"] + (member["suffix"] or "")


def _split_members(name, layers):
    """The split-form layers ``<base>_g1<suffix>``, ``<base>_g2<suffix>``... that make up native layer ``name``."""
    base, suffix = (name[:-3], "_bn") if name.endswith("_bn") else (name, "")
    members = []
    while f"{base}_g{len(members) + 1}{suffix}" in layers:
        members.append(layers[f"{base}_g{len(members) + 1}{suffix}"])
    return members


def _same_shapes(a, b):
    return [tuple(w.shape) for w in a.weights] == [tuple(w.shape) for w in b.weights]
