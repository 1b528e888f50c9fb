"""Depthwise convolution blocks of the mobile families (seed 003 §3.8, 000 §2.6).

``depthwise_bn_act`` is MobileNet's depthwise layer; ``inverted_residual`` is the inverted residual with linear
bottleneck of MobileNetV2 (Sandler et al. 2018), with MobileNetV3's squeeze-and-excitation and h-swish (Howard et
al. 2019) and EfficientNet's drop connect (Tan & Le 2019) as options: the "MBConv" block.
"""

import math

import keras

from keras_cnn import _validate
from keras_cnn.layers.conv import BN_EPSILON, PADDINGS, bn_act, conv_bn_act, pad
from keras_cnn.layers.drop_path import DropPath
from keras_cnn.layers.se import squeeze_excite


def make_divisible(value, divisor=8, min_value=None):
    """Round a channel count to the nearest multiple of ``divisor`` (at least ``min_value``, default ``divisor``)
    without going more than 10% below ``value``: ``_make_divisible`` of the TensorFlow MobileNet code, used by
    MobileNetV2/V3 width multipliers and EfficientNet's ``round_filters``."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def check_port_options(padding, bn_epsilon):
    """The mobile families' ``padding`` (``"same"``: TensorFlow's, ``"symmetric"``: PyTorch's, see
    :func:`keras_cnn.layers.conv.pad`) and ``bn_epsilon`` (> 0) options, validated."""
    _validate.check_choice("padding", padding, PADDINGS)
    bn_epsilon = _validate.check_float("bn_epsilon", bn_epsilon, minimum=0.0)
    if not (bn_epsilon > 0 and math.isfinite(bn_epsilon)):  # NaN passes a plain "<= 0" test
        raise ValueError("bn_epsilon must be a finite number > 0 (e.g. 1e-3 for TensorFlow checkpoints, 1e-5 for "
                         f"PyTorch's); received {bn_epsilon!r}.")
    return padding, bn_epsilon


def depthwise_bn_act(x, kernel_size, *, name, strides=1, padding="same", depth_multiplier=1, activation="relu",
                     epsilon=BN_EPSILON):
    """Depthwise convolution (no bias), batch normalisation, activation: ``name``, ``name_bn``,
    ``name_<activation>`` (no activation layer when ``activation`` is None, as in ShuffleNet). ``padding`` is
    ``"valid"``, ``"same"`` or ``"symmetric"`` (:func:`keras_cnn.layers.conv.pad`: a ``name_pad`` layer where
    PyTorch's padding differs from TensorFlow's)."""
    x, padding = pad(x, kernel_size, name=name, strides=strides, padding=padding)
    x = keras.layers.DepthwiseConv2D(kernel_size, strides=strides, padding=padding, use_bias=False,
                                     depth_multiplier=depth_multiplier, name=name)(x)
    return bn_act(x, name=name, activation=activation, epsilon=epsilon)


def inverted_residual(x, filters, kernel_size, *, name, expanded, strides=1, activation="relu6", se_channels=0,
                      se_activation="relu", se_gate="sigmoid", drop_rate=0.0, seed=None, epsilon=BN_EPSILON,
                      padding="same"):
    """Expand (1x1 to ``expanded`` channels), depthwise ``kernel_size``, optional SE, linear projection.

    The expansion is skipped when ``expanded`` equals the input width (MobileNetV2's t=1 blocks). The block adds
    its input back when the stride is 1 and the width is unchanged, after a ``DropPath`` of ``drop_rate`` (drop
    connect) if that is positive. ``se_channels`` > 0 inserts squeeze-and-excitation after the depthwise
    convolution with ``se_activation`` and ``se_gate``. ``padding`` is the depthwise convolution's (``"same"`` or
    ``"symmetric"``; the 1x1 convolutions need none). Layers: ``name_expand``, ``name_dwconv`` (``name_dwconv_pad``
    with symmetric padding), ``name_se_*``, ``name_project`` (each with ``_bn`` and activation), ``name_drop``,
    ``name_add``.
    """
    shortcut = x
    in_channels = x.shape[-1]
    if expanded != in_channels:
        x = conv_bn_act(x, expanded, 1, batch_norm=True, activation=activation, epsilon=epsilon,
                        name=f"{name}_expand")
    x = depthwise_bn_act(x, kernel_size, strides=strides, padding=padding, activation=activation, epsilon=epsilon,
                         name=f"{name}_dwconv")
    if se_channels:
        x = squeeze_excite(x, se_channels, activation=se_activation, gate=se_gate, name=f"{name}_se")
    x = conv_bn_act(x, filters, 1, batch_norm=True, activation=None, epsilon=epsilon, name=f"{name}_project")
    if strides != 1 or in_channels != filters:
        return x
    if drop_rate:
        x = DropPath(drop_rate, seed=seed, name=f"{name}_drop")(x)
    return keras.layers.Add(name=f"{name}_add")([shortcut, x])
