"""Grouped convolution in two interchangeable forms (seed 003 §3.3), and weight transfer between them.

``"native"`` is one ``Conv2D(groups=g)`` + batch norm + activation. ``"split"`` is channel split -> per group a
plain ``Conv2D`` + batch norm + activation -> concatenation: the same function with the same parameters (batch
norm and the activation act per channel, so they commute with the concatenation), built only from operators that
every TFLite runtime and delegate quantizes. TFLite had no grouped CONV_2D for years and full-integer conversion
of one failed up to at least TF 2.13 (tensorflow/tensorflow#40044, #61760); keeping batch norm inside each group
lets the converter fold it into that group's convolution (per-channel int8 scales) instead of leaving a
MUL/ADD on the concatenated tensor. Train in either form, move the weights with :func:`keras_cnn.rebuild`
(:mod:`keras_cnn._weights` names the split groups' weights as the native layer's), export the split form.
"""

import keras

from keras_cnn import _validate
from keras_cnn.layers.channel_shuffle import ChannelSplit
from keras_cnn.layers.conv import BN_EPSILON, conv_bn_act

GROUP_CONV_FORMS = ("native", "split")


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
