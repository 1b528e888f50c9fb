"""MobileNet v1, v2 and v3 (seed 003 §3.8 depthwise separable convolution, 000 §2.6).

The tables are the papers' tables; channel rounding, "same" padding and batch-norm epsilon 1e-3 follow the
authors' TensorFlow release (tensorflow/models research/slim), which keras.applications also follows.
Spec and options (CONTRIBUTING.md): each variant's architecture is its table as a frozen dataclass row; the
options are regularisation (dropout) and the papers' knobs that apply to every row with the paper's value as
default (the width multiplier ``alpha``, v1's ``depth_multiplier``, v3's ``minimalistic`` release form), and the
two numerical forms in which PyTorch-trained checkpoints differ (``padding="symmetric"``: PyTorch's ``k // 2``
zeros on both sides of a strided convolution where TensorFlow's "same" pads 0 before and 1 after on an even map;
``bn_epsilon``: torchvision's MobileNetV2 and timm's MobileNet v1 use 1e-5), so those weights compute the same
function here (:mod:`keras_cnn.weights`).
"""

import dataclasses

from keras_cnn import _validate
from keras_cnn.layers.conv import conv_bn_act
from keras_cnn.layers.mbconv import check_port_options, depthwise_bn_act, inverted_residual, make_divisible
from keras_cnn.registry import register

EPSILON = 1e-3  # TensorFlow MobileNet batch-norm epsilon (keras.applications and torchvision's v3 use it too)

@dataclasses.dataclass(frozen=True)
class MobileNetV1Spec:
    """MobileNet v1 (Howard et al. 2017), Table 1."""

    # (pointwise filters, depthwise stride) of the 13 depthwise separable layers. The table prints stride 2 for
    # the last depthwise layer, a known typo: the released model keeps it at 1 (7x7 stays 7x7 before the pool).
    layers: tuple
    stem: int = 32  # filters of the first 3x3/2 convolution


MOBILENET_V1 = MobileNetV1Spec(((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
                                (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)))


@register("mobilenet_v1", family="mobilenet", default_input=(224, 224, 3), min_input=32, spec=MOBILENET_V1)
def mobilenet_v1(x, head, *, spec, alpha=1.0, depth_multiplier=1, dropout=1e-3, padding="same", bn_epsilon=EPSILON):
    """MobileNet v1 (Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
    Applications", 2017): a 3x3/2 convolution then 13 depthwise (3x3, BN, ReLU6) + pointwise (1x1, BN, ReLU6)
    layers, global average pooling, dropout, classifier.

    ``alpha`` is the width multiplier (paper: 1.0, 0.75, 0.5, 0.25; every layer gets ``max(int(c * alpha), 8)``
    channels as in the authors' code); ``depth_multiplier`` the number of depthwise outputs per input channel
    (keras.applications' option; the paper's resolution multiplier is the input size). ``dropout`` is the
    release's 1e-3 (keep probability 0.999). ``padding`` ("same", TensorFlow's, or
    "symmetric", PyTorch's) and ``bn_epsilon`` (1e-3) are the forms of a checkpoint (see the module docstring).
    """
    alpha = _check_width("alpha", alpha)
    depth_multiplier = _validate.check_int("depth_multiplier", depth_multiplier, minimum=1)
    dropout = _validate.check_rate("dropout", dropout)
    padding, bn_epsilon = check_port_options(padding, bn_epsilon)

    def width(channels):
        return max(int(channels * alpha), 8)

    x = conv_bn_act(x, width(spec.stem), 3, strides=2, padding=padding, batch_norm=True, activation="relu6",
                    epsilon=bn_epsilon, name="conv1")
    for index, (filters, strides) in enumerate(spec.layers, start=1):
        x = depthwise_bn_act(x, 3, strides=strides, padding=padding, depth_multiplier=depth_multiplier,
                             activation="relu6", epsilon=bn_epsilon, name=f"block{index}_dwconv")
        x = conv_bn_act(x, width(filters), 1, batch_norm=True, activation="relu6", epsilon=bn_epsilon,
                        name=f"block{index}_pwconv")
    return head.pooled(x, dropout=dropout)


@dataclasses.dataclass(frozen=True)
class MobileNetV2Spec:
    """MobileNet v2 (Sandler et al. 2018), Table 2."""

    stem: int  # filters of the 3x3/2 convolution
    rows: tuple  # (expansion t, output channels c, repeats n, first stride s) of the seven bottleneck rows
    last: int  # filters of the last 1x1 convolution


MOBILENET_V2 = MobileNetV2Spec(stem=32, rows=((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                                              (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)), last=1280)


@register("mobilenet_v2", family="mobilenet", default_input=(224, 224, 3), min_input=32, spec=MOBILENET_V2)
def mobilenet_v2(x, head, *, spec, alpha=1.0, dropout=0.2, padding="same", bn_epsilon=EPSILON):
    """MobileNet v2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018).

    Inverted residual blocks with linear bottlenecks and ReLU6; ``stage<row>_block<i>`` follow Table 2's rows.
    ``alpha`` is the width multiplier (paper: 0.35 to 1.4): channels are rounded to multiples of 8 and the
    last 1x1 convolution keeps 1280 channels for ``alpha <= 1`` (§6.1). ``dropout`` 0.2 before the classifier
    (the authors' release and torchvision). ``padding`` ("same", TensorFlow's, or
    "symmetric", PyTorch's) and ``bn_epsilon`` (1e-3) are the forms of a checkpoint (see the module docstring).
    """
    alpha = _check_width("alpha", alpha)
    dropout = _validate.check_rate("dropout", dropout)
    padding, bn_epsilon = check_port_options(padding, bn_epsilon)
    x = conv_bn_act(x, make_divisible(spec.stem * alpha), 3, strides=2, padding=padding, batch_norm=True,
                    activation="relu6", epsilon=bn_epsilon, name="conv1")
    for row, (expansion, channels, repeats, first_stride) in enumerate(spec.rows, start=1):
        for block in range(1, repeats + 1):
            x = inverted_residual(x, make_divisible(channels * alpha), 3, expanded=x.shape[-1] * expansion,
                                  strides=first_stride if block == 1 else 1, activation="relu6",
                                  padding=padding, epsilon=bn_epsilon, name=f"stage{row}_block{block}")
    last = make_divisible(spec.last * alpha) if alpha > 1.0 else spec.last
    x = conv_bn_act(x, last, 1, batch_norm=True, activation="relu6", epsilon=bn_epsilon, name="conv_last")
    return head.pooled(x, dropout=dropout)


@dataclasses.dataclass(frozen=True)
class MobileNetV3Spec:
    """MobileNet v3 (Howard et al. 2019), Table 1 (large) or Table 2 (small)."""

    blocks: tuple  # one row per bneck: (kernel, expansion size, output channels, SE, nonlinearity, stride)
    last: int  # filters of the 1x1 convolution with BN and h-swish after the blocks
    head: int  # units of "head_fc", the 1x1 convolution without BN on the pooled vector, before the classifier
    stem: int = 16  # filters of the first 3x3/2 convolution


MOBILENET_V3_LARGE = MobileNetV3Spec(
    blocks=((3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
            (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
            (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
            (3, 184, 80, False, "HS", 1), (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
            (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1)),
    last=960, head=1280)
MOBILENET_V3_SMALL = MobileNetV3Spec(
    blocks=((3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
            (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
            (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
            (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1)),
    last=576, head=1024)
NONLINEARITIES = {"RE": "relu", "HS": "hard_swish"}


def mobilenet_v3(x, head, *, spec, minimalistic=False, dropout=0.2, padding="same", bn_epsilon=EPSILON):
    """MobileNet v3 (Howard et al., "Searching for MobileNetV3", ICCV 2019), large or small.

    h-swish ``x * relu6(x + 3) / 6`` where the tables say HS; squeeze-and-excitation with
    ``make_divisible(expansion / 4)`` channels, ReLU and the hard sigmoid gate ``relu6(x + 3) / 6`` (§5.3).
    ``minimalistic=True`` is the authors' released "minimalistic" variant: no SE, no h-swish (ReLU), 3x3 kernels
    only. ``dropout`` 0.2 before the classifier. ``padding`` ("same", TensorFlow's, or
    "symmetric", PyTorch's) and ``bn_epsilon`` (1e-3) are the forms of a checkpoint (see the module docstring).
    """
    _validate.check_bool("minimalistic", minimalistic)
    dropout = _validate.check_rate("dropout", dropout)
    padding, bn_epsilon = check_port_options(padding, bn_epsilon)
    swish = "relu" if minimalistic else "hard_swish"
    x = conv_bn_act(x, spec.stem, 3, strides=2, padding=padding, batch_norm=True, activation=swish,
                    epsilon=bn_epsilon, name="conv1")
    for index, (kernel, expanded, filters, se, nonlinearity, strides) in enumerate(spec.blocks, start=1):
        activation = "relu" if minimalistic else NONLINEARITIES[nonlinearity]
        x = inverted_residual(x, filters, 3 if minimalistic else kernel, expanded=expanded, strides=strides,
                              activation=activation, padding=padding, epsilon=bn_epsilon, name=f"block{index}",
                              se_channels=make_divisible(expanded / 4) if se and not minimalistic else 0,
                              se_gate="hard_sigmoid")
    x = conv_bn_act(x, spec.last, 1, batch_norm=True, activation=swish, epsilon=bn_epsilon, name="conv_last")
    return head.fully_connected(x, (("head_fc", spec.head),), activation=swish, dropout=dropout, flatten=False)


register("mobilenet_v3_large", family="mobilenet", default_input=(224, 224, 3), min_input=32,
         spec=MOBILENET_V3_LARGE)(mobilenet_v3)
register("mobilenet_v3_small", family="mobilenet", default_input=(224, 224, 3), min_input=32,
         spec=MOBILENET_V3_SMALL)(mobilenet_v3)


def _check_width(name, value):
    value = _validate.check_float(name, value, minimum=0.0)
    if value <= 0:
        raise ValueError(f"{name} (width multiplier) must be > 0, e.g. 1.0, 0.75, 0.5; received {value!r}.")
    return value
