"""ShuffleNet v1 and v2 (seed 003 §3.3 grouped convolution, §3.9 channel shuffle; 000 §2.6).

Both originals are Caffe/PyTorch models, so stride-2 convolutions and poolings pad one pixel on every side
(PyTorch ``padding=1``) instead of TensorFlow's "same" (which pads only bottom/right on even sizes): windows line
up with the reference implementations and their weights.
Spec and options (CONTRIBUTING.md): a variant's architecture is its spec row (Table 1's g column, Table 5's
width column); ShuffleNet v1's options are the paper's width multiplier ``scale`` (every row, default 1) and two
implementation forms of the same function (``grouped_conv``, ``shortcut_pool``).
"""

import dataclasses

import keras

from keras_cnn import _validate
from keras_cnn.layers.channel_shuffle import ChannelShuffle, ChannelSplit
from keras_cnn.layers.conv import conv_bn_act
from keras_cnn.layers.group_conv import GROUP_CONV_FORMS, group_conv_bn_act
from keras_cnn.layers.mbconv import depthwise_bn_act, make_divisible
from keras_cnn.layers.pooling import DepthwiseAveragePooling2D
from keras_cnn.registry import register

__all__ = ["INT8_FORM", "shufflenet_v1", "shufflenet_v2"]

STAGE_REPEATS = (4, 8, 4)  # units in stages 2, 3, 4 (first one with stride 2), both papers


@dataclasses.dataclass(frozen=True)
class ShuffleNetV1Spec:
    """ShuffleNet v1 (Zhang et al. 2018), Table 1: one column per number of groups g."""

    groups: int  # g of the grouped 1x1 convolutions
    widths: tuple  # output channels of stages 2-4 ("ShuffleNet 1x")
    repeats: tuple = STAGE_REPEATS  # units in stages 2-4


SHUFFLENET_V1 = {
    "shufflenet_v1_g1": ShuffleNetV1Spec(1, (144, 288, 576)),
    "shufflenet_v1_g2": ShuffleNetV1Spec(2, (200, 400, 800)),
    "shufflenet_v1_g3": ShuffleNetV1Spec(3, (240, 480, 960)),
    "shufflenet_v1_g4": ShuffleNetV1Spec(4, (272, 544, 1088)),
    "shufflenet_v1_g8": ShuffleNetV1Spec(8, (384, 768, 1536)),
}
# conv1 width per scale in the authors' release (megvii-model/ShuffleNet-Series, ShuffleNetV1/network.py)
V1_STEM = {0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}
# the stride-2 units' shortcut pooling: a Keras pooling layer, or the same average as a constant depthwise
# convolution (full-integer TFLite; see DepthwiseAveragePooling2D)
SHORTCUT_POOLS = {"average": keras.layers.AveragePooling2D, "depthwise": DepthwiseAveragePooling2D}
# the same function in the form full-integer TFLite quantizes without clipping (keras_cnn.model.int8_form)
INT8_FORM = {"grouped_conv": "split", "shortcut_pool": "depthwise"}


def shufflenet_v1(x, head, *, spec, scale=1.0, grouped_conv="native", shortcut_pool="average"):
    """ShuffleNet v1 (Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile
    Devices", CVPR 2018), ``g = spec.groups``.

    conv1 (3x3/2, 24) and 3x3/2 max pooling, then stages 2-4 of ShuffleNet units (Fig. 2): 1x1 group
    convolution + BN + ReLU, channel shuffle, 3x3 depthwise convolution + BN, 1x1 group convolution + BN, with
    an identity shortcut and ReLU after the addition; the first unit of a stage has stride 2, a 3x3/2 average
    pooled shortcut and concatenation. Bottleneck width is a quarter of the unit's output; the first 1x1
    convolution of stage 2 is not grouped (its input has only 24 channels, §3.3).

    ``scale`` ("ShuffleNet s x", 0.5/1.0/1.5/2.0) multiplies the stage widths (rounded to multiples of 4g so
    every group divides evenly; unchanged for g=3 and g=8) and sets conv1 to the release's 12/24/24/48 (rounded
    up to a multiple of g). ``grouped_conv="split"`` builds each group convolution as split -> per-group
    convolution -> concatenation (same function and parameters; for int8 TFLite export, see
    :func:`keras_cnn.rebuild`). ``shortcut_pool="depthwise"`` computes the shortcut's average pooling
    as a constant depthwise convolution (same function, no parameters), which keeps full-integer TFLite from
    clipping the residual sums that feed it; export ShuffleNet v1 to int8 with both.
    """
    _validate.check_choice("scale", scale, tuple(V1_STEM))
    _validate.check_choice("grouped_conv", grouped_conv, GROUP_CONV_FORMS)
    _validate.check_choice("shortcut_pool", shortcut_pool, tuple(SHORTCUT_POOLS))
    groups = spec.groups
    stem = -(-V1_STEM[scale] // groups) * groups
    x = _stem(x, stem)
    for stage, (width, repeats) in enumerate(zip(spec.widths, spec.repeats), start=2):
        width = make_divisible(width * scale, 4 * groups)
        for block in range(1, repeats + 1):
            x = _v1_unit(x, width, groups, strides=2 if block == 1 else 1, first_grouped=stage > 2 or block > 1,
                         form=grouped_conv, pool=SHORTCUT_POOLS[shortcut_pool], name=f"stage{stage}_block{block}")
    return head.pooled(x)


def _v1_unit(x, width, groups, *, strides, first_grouped, form, pool, name):
    y = group_conv_bn_act(x, width // 4, 1, groups=groups if first_grouped else 1, form=form,
                          name=f"{name}_conv1")
    if groups > 1:
        y = ChannelShuffle(groups, name=f"{name}_shuffle")(y)
    y = _depthwise(y, strides, name=f"{name}_dwconv")
    if strides == 1:
        y = group_conv_bn_act(y, width, 1, groups=groups, form=form, activation=None, name=f"{name}_conv2")
        return keras.layers.ReLU(name=f"{name}_relu")(keras.layers.Add(name=f"{name}_add")([x, y]))
    # Fig. 2c applies ReLU after the concatenation; the pooled shortcut of a ReLU output is never negative, so
    # ReLU on the residual branch alone is the same (the authors' code), and it fuses into the convolution
    y = group_conv_bn_act(y, width - x.shape[-1], 1, groups=groups, form=form, name=f"{name}_conv2")
    shortcut = _torch_pool(x, pool, name=f"{name}_shortcut_pool")
    return keras.layers.Concatenate(name=f"{name}_concat")([shortcut, y])


@dataclasses.dataclass(frozen=True)
class ShuffleNetV2Spec:
    """ShuffleNet v2 (Ma et al. 2018), Table 5: one column per width."""

    conv1: int  # output channels of conv1
    widths: tuple  # output channels of stages 2-4
    conv5: int  # output channels of conv5
    repeats: tuple = STAGE_REPEATS  # units in stages 2-4


SHUFFLENET_V2 = {
    "shufflenet_v2_x0_5": ShuffleNetV2Spec(24, (48, 96, 192), 1024),
    "shufflenet_v2_x1_0": ShuffleNetV2Spec(24, (116, 232, 464), 1024),
    "shufflenet_v2_x1_5": ShuffleNetV2Spec(24, (176, 352, 704), 1024),
    "shufflenet_v2_x2_0": ShuffleNetV2Spec(24, (244, 488, 976), 2048),
}


def shufflenet_v2(x, head, *, spec):
    """ShuffleNet v2 (Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
    ECCV 2018), as torchvision's ``shufflenet_v2_x*``.

    conv1 (3x3/2) and 3x3/2 max pooling, stages 2-4 of units (Fig. 3c/d) and conv5 (1x1), global average
    pooling, classifier. A stride-1 unit splits the channels in half, passes one half through 1x1 conv + BN +
    ReLU, 3x3 depthwise + BN, 1x1 conv + BN + ReLU, concatenates it with the untouched half and shuffles the
    two groups; a stride-2 unit feeds the whole input to both branches (the left one 3x3/2 depthwise + BN,
    1x1 conv + BN + ReLU), doubling the width.
    """
    x = _stem(x, spec.conv1)
    for stage, (width, repeats) in enumerate(zip(spec.widths, spec.repeats), start=2):
        for block in range(1, repeats + 1):
            x = _v2_unit(x, width, strides=2 if block == 1 else 1, name=f"stage{stage}_block{block}")
    x = conv_bn_act(x, spec.conv5, 1, batch_norm=True, name="conv5")
    return head.pooled(x)


def _v2_unit(x, width, *, strides, name):
    half = width // 2
    if strides == 1:
        left, right = ChannelSplit(2, name=f"{name}_split")(x)
    else:
        left = _depthwise(x, strides, name=f"{name}_branch1_dwconv")
        left = conv_bn_act(left, half, 1, batch_norm=True, name=f"{name}_branch1_conv")
        right = x
    right = conv_bn_act(right, half, 1, batch_norm=True, name=f"{name}_branch2_conv1")
    right = _depthwise(right, strides, name=f"{name}_branch2_dwconv")
    right = conv_bn_act(right, half, 1, batch_norm=True, name=f"{name}_branch2_conv2")
    x = keras.layers.Concatenate(name=f"{name}_concat")([left, right])
    return ChannelShuffle(2, name=f"{name}_shuffle")(x)


def _stem(x, filters):
    """conv1 (3x3/2, BN, ReLU) and max pooling (3x3/2), both padded by one pixel as in PyTorch."""
    x = keras.layers.ZeroPadding2D(1, name="conv1_pad")(x)
    x = conv_bn_act(x, filters, 3, strides=2, padding="valid", batch_norm=True, name="conv1")
    # zero padding is -inf padding here: the input is a ReLU output, so a zero never beats a window's maximum
    return _torch_pool(x, keras.layers.MaxPooling2D, name="pool1")


def _torch_pool(x, pool, *, name):
    """3x3/2 pooling with one pixel of zero padding on every side (PyTorch ``padding=1``; for averages the
    zeros count, ``count_include_pad=True``)."""
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return pool(3, strides=2, name=name)(x)


def _depthwise(x, strides, *, name):
    """3x3 depthwise convolution + BN, no activation (both papers), padded as in PyTorch."""
    if strides == 1:
        return depthwise_bn_act(x, 3, activation=None, name=name)
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return depthwise_bn_act(x, 3, strides=strides, padding="valid", activation=None, name=name)


for _name, _spec in SHUFFLENET_V1.items():
    register(_name, family="shufflenet", default_input=(224, 224, 3), min_input=32, spec=_spec,
             int8_options=INT8_FORM)(shufflenet_v1)
for _name, _spec in SHUFFLENET_V2.items():
    register(_name, family="shufflenet", default_input=(224, 224, 3), min_input=32, spec=_spec)(shufflenet_v2)
