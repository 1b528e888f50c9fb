"""Xception (Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017; seed 003 §4.5).

Entry flow, middle flow (8 repeats) and exit flow of the paper's Figure 5: depthwise-separable convolutions
(``SeparableConv2D``: a depthwise 3x3 then a pointwise 1x1, no bias, no nonlinearity in between), each followed by
batch normalisation; residual connections around every block, with a strided 1x1 convolution + BN on the
shortcut where the block downsamples. 22,855,952 parameters at 1000 classes, the paper's Table 3 figure (and
keras.applications.Xception's trainable parameters).
Spec and options (CONTRIBUTING.md): the architecture is the :class:`XceptionSpec` row; the options are dropout and
the two implementation details in which timm's PyTorch port of the Keras model differs: its max pooling's
symmetric padding and its batch-normalisation epsilon (``padding``, ``bn_epsilon``).
"""

import dataclasses

import keras

from keras_cnn import _validate
from keras_cnn.layers.conv import PADDINGS
from keras_cnn.layers.normalization import BatchNormalization
from keras_cnn.layers.pooling import PaddedMaxPooling2D
from keras_cnn.registry import register

BN_EPSILON = 1e-3  # keras.applications / the paper's TensorFlow model


@dataclasses.dataclass(frozen=True)
class XceptionSpec:
    """Xception's flows (Chollet 2017, Figure 5)."""

    entry: tuple  # (block, widths of its separable convolutions) of the downsampling entry-flow blocks
    middle: tuple  # (width, repeats) of the middle-flow blocks
    exit: tuple  # (block, widths) of the downsampling exit-flow block
    final: tuple  # (filters, layer name) of the separable convolutions with ReLU before the pooling


XCEPTION = XceptionSpec(entry=(("block2", (128, 128)), ("block3", (256, 256)), ("block4", (728, 728))),
                        middle=(728, 8), exit=("block13", (728, 1024)),
                        final=((1536, "block14_sepconv1"), (2048, "block14_sepconv2")))


def separable_conv_bn(x, filters, *, name, pre_activation=True, activation=None, epsilon=BN_EPSILON):
    """[ReLU] -> 3x3 depthwise-separable convolution (no bias) -> BN [-> activation] (``name``, ``name_bn``)."""
    if pre_activation:
        x = keras.layers.Activation("relu", name=f"{name}_act")(x)
    x = keras.layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    x = BatchNormalization(epsilon=epsilon, name=f"{name}_bn")(x)
    if activation:
        x = keras.layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def _downsampling_block(x, widths, name, *, padding, epsilon, first_activation=True):
    """Two separable convolutions and 3x3/2 max pooling, added to a 1x1/2 convolution + BN of the input.

    ``padding="symmetric"`` pools as PyTorch's ``MaxPool2d(3, 2, padding=1)``: on an even map its windows start one
    cell before TensorFlow's "same" ones (on an odd map both agree). The 1x1/2 shortcut reads the same cells
    either way (no padding)."""
    shortcut = keras.layers.Conv2D(widths[-1], 1, strides=2, padding="same", use_bias=False,
                                   name=f"{name}_shortcut")(x)
    shortcut = BatchNormalization(epsilon=epsilon, name=f"{name}_shortcut_bn")(shortcut)
    for i, width in enumerate(widths, start=1):
        x = separable_conv_bn(x, width, name=f"{name}_sepconv{i}", pre_activation=first_activation or i > 1,
                              epsilon=epsilon)
    if padding == "symmetric":  # the pooled map comes from BN, not ReLU: zero padding could win the maximum
        x = PaddedMaxPooling2D(3, strides=2, padding=1, name=f"{name}_pool")(x)
    else:
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return keras.layers.Add(name=f"{name}_add")([x, shortcut])


@register("xception", family="inception", default_input=(299, 299, 3), min_input=71, spec=XCEPTION)
def xception(x, head, *, spec, dropout=0.5, padding="same", bn_epsilon=BN_EPSILON):
    """Xception (Chollet 2017): 22,855,952 parameters at 1000 classes (paper Table 3).

    Entry flow: 3x3/2 conv 32, 3x3 conv 64 (valid, BN, ReLU), then blocks 2-4 (128, 256, 728 channels) each
    halving the grid; middle flow: blocks 5-12, three ReLU-separable conv-BN layers of 728 with an identity
    shortcut; exit flow: block 13 (728, 1024, halving), separable convolutions 1536 and 2048 with ReLU, global
    average pooling, dropout 0.5 (the paper's ImageNet setting), classifier. Layer names as keras.applications
    (``block5_sepconv2``, ``block13_pool``...).

    Options: ``dropout``; ``padding``, "same" (TensorFlow's, as the Keras model was trained) or "symmetric"
    (PyTorch's, for timm's ``legacy_xception``: only the four 3x3/2 max poolings differ, and only on even maps,
    e.g. block3's 74x74 at 299x299); ``bn_epsilon``, the epsilon of every batch normalisation (1e-3 as
    keras.applications; timm's port computes with PyTorch's 1e-5).
    """
    dropout = _validate.check_rate("dropout", dropout)
    _validate.check_choice("padding", padding, PADDINGS)
    epsilon = _validate.check_float("bn_epsilon", bn_epsilon, minimum=1e-12)  # > 0: constant channels stay finite
    for i, (filters, strides) in enumerate(((32, 2), (64, 1)), start=1):
        x = keras.layers.Conv2D(filters, 3, strides=strides, use_bias=False, name=f"block1_conv{i}")(x)
        x = BatchNormalization(epsilon=epsilon, name=f"block1_conv{i}_bn")(x)
        x = keras.layers.Activation("relu", name=f"block1_conv{i}_act")(x)
    for index, (name, widths) in enumerate(spec.entry):
        x = _downsampling_block(x, widths, name, padding=padding, epsilon=epsilon, first_activation=index > 0)
    width, repeats = spec.middle
    for block in range(5, 5 + repeats):
        name = f"block{block}"
        y = x
        for i in range(1, 4):
            y = separable_conv_bn(y, width, name=f"{name}_sepconv{i}", epsilon=epsilon)
        x = keras.layers.Add(name=f"{name}_add")([y, x])
    name, widths = spec.exit
    x = _downsampling_block(x, widths, name, padding=padding, epsilon=epsilon)
    for filters, layer_name in spec.final:
        x = separable_conv_bn(x, filters, name=layer_name, pre_activation=False, activation="relu", epsilon=epsilon)
    return head.pooled(x, dropout=dropout)
