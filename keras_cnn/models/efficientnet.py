"""EfficientNet B0-B7 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
ICML 2019; seed 000 §2.6).

The B0 baseline is Table 1 of the paper; B1-B7 scale it with the compound coefficients of the authors'
release (width, depth, resolution, dropout). Channels are rounded to multiples of 8 and repeats rounded up, as
in the release, keras.applications and torchvision; padding is TensorFlow "same", batch-norm epsilon 1e-3.
Spec and options (CONTRIBUTING.md): a variant's architecture is its :class:`EfficientNetSpec` row (the width and
depth coefficients and resolution); dropout and drop connect are options, dropout defaulting to the release's
value for each variant, and so are the numerical forms of PyTorch-trained checkpoints: ``padding="symmetric"``
(PyTorch's ``k // 2`` zeros on both sides of the strided convolutions) and ``bn_epsilon`` (torchvision's B0-B4
use 1e-5), so those weights compute the same function here (:mod:`keras_cnn.weights`).
"""

import dataclasses
import math

from keras_cnn import _validate
from keras_cnn.layers.conv import conv_bn_act
from keras_cnn.layers.mbconv import check_port_options, inverted_residual, make_divisible
from keras_cnn.registry import register

EPSILON = 1e-3  # the release's batch-norm epsilon

# Table 1 (EfficientNet-B0), stages 2-8: (MBConv expansion, kernel, first stride, output channels, layers);
# stage 1 is a 3x3/2 convolution with 32 filters, stage 9 a 1x1 convolution with 1280 filters + pooling + FC.
EFFICIENTNET_B0 = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                   (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
STEM, TOP = 32, 1280


@dataclasses.dataclass(frozen=True)
class EfficientNetSpec:
    """One compound-scaling row of the release (efficientnet_builder.py; the paper's §3.3 and Table 1 for B0)."""

    width: float  # width coefficient: channels x width, rounded to multiples of 8
    depth: float  # depth coefficient: layers x depth, rounded up
    resolution: int  # input height and width

    @property
    def stages(self):
        """B0's stages scaled by the coefficients: ``(expansion, kernel, stride, channels, layers)``."""
        return tuple((expansion, kernel, stride, make_divisible(channels * self.width), math.ceil(layers * self.depth))
                     for expansion, kernel, stride, channels, layers in EFFICIENTNET_B0)


# name: (spec row, the release's dropout before the classifier)
COMPOUND_SCALING = {
    "efficientnet_b0": (EfficientNetSpec(1.0, 1.0, 224), 0.2),
    "efficientnet_b1": (EfficientNetSpec(1.0, 1.1, 240), 0.2),
    "efficientnet_b2": (EfficientNetSpec(1.1, 1.2, 260), 0.3),
    "efficientnet_b3": (EfficientNetSpec(1.2, 1.4, 300), 0.3),
    "efficientnet_b4": (EfficientNetSpec(1.4, 1.8, 380), 0.4),
    "efficientnet_b5": (EfficientNetSpec(1.6, 2.2, 456), 0.4),
    "efficientnet_b6": (EfficientNetSpec(1.8, 2.6, 528), 0.5),
    "efficientnet_b7": (EfficientNetSpec(2.0, 3.1, 600), 0.5),
}


def efficientnet(x, head, *, spec, dropout=0.2, drop_connect_rate=0.2, padding="same", bn_epsilon=EPSILON):
    """EfficientNet (Tan & Le 2019): MBConv blocks (inverted residual with squeeze-and-excitation of a quarter
    of the block's input channels, swish), a 1x1 convolution, global average pooling, dropout, classifier.

    ``dropout`` before the classifier is the variant's (0.2 for B0 up to 0.5 for B7). ``drop_connect_rate``
    (0.2): block ``i`` of ``n`` (counting from 0) drops its residual branch per sample with rate
    ``drop_connect_rate * i / n`` during training, as in the release. Each drop-path layer has a fixed seed (its
    block number), so builds are reproducible. Blocks are ``stage<row>_block<i>`` after the rows of Table 1
    (row 1 = the paper's stage 2). ``padding`` ("same", TensorFlow's, or "symmetric", PyTorch's) and
    ``bn_epsilon`` (1e-3) are the forms of a checkpoint (see the module docstring).
    """
    dropout = _validate.check_rate("dropout", dropout)
    drop_connect_rate = _validate.check_rate("drop_connect_rate", drop_connect_rate)
    padding, bn_epsilon = check_port_options(padding, bn_epsilon)
    x = conv_bn_act(x, make_divisible(STEM * spec.width), 3, strides=2, padding=padding, batch_norm=True,
                    activation="swish", epsilon=bn_epsilon, name="conv1")
    stages = spec.stages
    total = sum(stage[-1] for stage in stages)
    index = 0
    for row, (expansion, kernel, first_stride, channels, layers) in enumerate(stages, start=1):
        for block in range(1, layers + 1):
            x = inverted_residual(x, channels, kernel, expanded=x.shape[-1] * expansion,
                                  strides=first_stride if block == 1 else 1, activation="swish",
                                  se_channels=max(1, x.shape[-1] // 4), se_activation="swish",
                                  drop_rate=drop_connect_rate * index / total, seed=index, padding=padding,
                                  epsilon=bn_epsilon, name=f"stage{row}_block{block}")
            index += 1
    x = conv_bn_act(x, make_divisible(TOP * spec.width), 1, batch_norm=True, activation="swish",
                    epsilon=bn_epsilon, name="conv_last")
    return head.pooled(x, dropout=dropout)


for _name, (_spec, _dropout) in COMPOUND_SCALING.items():
    register(_name, family="efficientnet", default_input=(_spec.resolution, _spec.resolution, 3), min_input=32,
             spec=_spec, dropout=_dropout)(efficientnet)
