"""Inception-v4, Inception-ResNet-v1 and Inception-ResNet-v2 (Szegedy, Ioffe, Vanhoucke & Alemi, "Inception-v4,
Inception-ResNet and the Impact of Residual Connections on Learning", AAAI 2017; seed 003 §4.4).

Convolutions are conv + BN (epsilon 1e-3, no gamma, as the authors' TF-slim release and keras.applications;
``batch_norm_scale=True`` adds it, as timm) + ReLU; "V" convolutions of the figures use valid padding, all others
same padding. Module tables use :mod:`keras_cnn.layers.inception_blocks`, with the branches in the channel order of
the released TF-slim weights (timm's ``inception_v4`` and ``inception_resnet_v2`` and keras.applications'
``InceptionResNetV2`` are those weights): pooling branches last except in the stem's ``mixed_3a``.
Spec and options (CONTRIBUTING.md): a variant's architecture is its spec row (blocks per stage, module branches,
Reduction-A/-B); the options are dropout, the residual scales (a training-stability knob of the paper, §3.3, with
the release's values as default) and BN gamma (``batch_norm_scale``, timm's form).
"""

import dataclasses

from keras_cnn import _validate
from keras_cnn.layers.inception_blocks import (Conv, ConvBN, Pool, Split, asymmetric, inception_module, reduction_a,
                                               residual_inception_module)
from keras_cnn.models.inception import stem_to_4a, v3_stem
from keras_cnn.registry import register

# Reduction-A filter numbers (k, l, m, n): seed 003 §4.4 table = paper Table 1. The seed prints m = 256 for
# Inception-ResNet-v2; the paper's Table 1 and the released model have m = 384 (1088 channels after the module).
REDUCTION_A = {
    "inception_v4": (192, 224, 256, 384),
    "inception_resnet_v1": (192, 192, 256, 384),
    "inception_resnet_v2": (256, 256, 384, 384),
}
# Residual scales of the A, B and C blocks: the paper (§3.3) scales residuals by 0.1-0.3 before the addition;
# these are the authors' values in the released TF-slim Inception-ResNet-v2 (block35 0.17, block17 0.10,
# block8 0.20), also those of keras.applications.
RESIDUAL_SCALE = (0.17, 0.10, 0.20)


def _head_dropout(dropout):
    return _validate.check_rate("dropout", dropout)


def _conv(batch_norm_scale):
    _validate.check_bool("batch_norm_scale", batch_norm_scale)
    return ConvBN(batch_norm=True, scale=batch_norm_scale, epsilon=1e-3)


def _scales(residual_scale):
    """``residual_scale`` is one number for every block or an (A, B, C) triple, each in [0, 1]."""
    if isinstance(residual_scale, (list, tuple)):
        if len(residual_scale) != 3:
            raise ValueError(f"residual_scale must be a number or an (A, B, C) triple; received {residual_scale!r}.")
        return tuple(_validate.check_float("residual_scale", s, minimum=0.0, maximum=1.0) for s in residual_scale)
    scale = _validate.check_float("residual_scale", residual_scale, minimum=0.0, maximum=1.0)
    return (scale,) * 3


# Inception-v4 (paper Figs. 3-9): stem to 35x35x384, 4 x Inception-A, Reduction-A, 7 x Inception-B,
# Reduction-B, 3 x Inception-C (TF-slim module names).
def v4_stem_convs(x, conv):
    """The three convolutions that open Inception-v4's stem (paper Fig. 3): 299 -> 147x147x64."""
    x = conv(x, 32, 3, strides=2, padding="valid", name="conv2d_1a_3x3")
    x = conv(x, 32, 3, padding="valid", name="conv2d_2a_3x3")
    return conv(x, 64, 3, name="conv2d_2b_3x3")


# The stem's modules (Fig. 3) -> 35x35x384; branch order of TF-slim (pooling first in mixed_3a only).
V4_STEM = (("mixed_3a", ((Pool("max", 3, 2, "valid"),), (Conv(96, 3, 2, "valid"),))),
           ("mixed_4a", ((Conv(64, 1), Conv(96, 3, padding="valid")),
                         (Conv(64, 1), *asymmetric(7, 64, 64), Conv(96, 3, padding="valid")))),
           ("mixed_5a", ((Conv(192, 3, 2, "valid"),), (Pool("max", 3, 2, "valid"),))))


# The blocks as TF-slim's inception_v4.py builds them (the released weights; timm's inception_v4 is their port):
# the pooling branch is concatenated last, Inception-B's double 7x7 branch starts with 7x1 and Inception-C's
# double 3x3 branch with 3x1 (the paper's Figs. 5 and 6 draw them the other way round; the weights fix the
# order), and Inception-C's last fork is 1x3 then 3x1.
V4_A = ((Conv(96, 1),),
        (Conv(64, 1), Conv(96, 3)),
        (Conv(64, 1), Conv(96, 3), Conv(96, 3)),
        (Pool("avg"), Conv(96, 1)))
V4_B = ((Conv(384, 1),),
        (Conv(192, 1), *asymmetric(7, 224, 256)),
        (Conv(192, 1), Conv(192, (7, 1)), Conv(224, (1, 7)), Conv(224, (7, 1)), Conv(256, (1, 7))),
        (Pool("avg"), Conv(128, 1)))
V4_REDUCTION_B = ((Conv(192, 1), Conv(192, 3, 2, "valid")),
                  (Conv(256, 1), *asymmetric(7, 256, 320), Conv(320, 3, 2, "valid")),
                  (Pool("max", 3, 2, "valid"),))
V4_C = ((Conv(256, 1),),
        (Conv(384, 1), Split((Conv(256, (1, 3)), Conv(256, (3, 1))))),
        (Conv(384, 1), Conv(448, (3, 1)), Conv(512, (1, 3)), Split((Conv(256, (1, 3)), Conv(256, (3, 1))))),
        (Pool("avg"), Conv(256, 1)))


@dataclasses.dataclass(frozen=True)
class InceptionV4Spec:
    """Inception-v4 (Szegedy et al. 2017, Figs. 3-9 and Table 1)."""

    blocks: tuple  # (count, TF-slim stage name, branches) of the Inception-A, -B and -C stages
    reduction_a: tuple  # Reduction-A's (k, l, m, n), Table 1
    reduction_b: tuple  # Reduction-B's branches (Fig. 8)


INCEPTION_V4 = InceptionV4Spec(blocks=((4, "mixed_5", V4_A), (7, "mixed_6", V4_B), (3, "mixed_7", V4_C)),
                               reduction_a=REDUCTION_A["inception_v4"], reduction_b=V4_REDUCTION_B)


@register("inception_v4", family="inception", default_input=(299, 299, 3), min_input=75, spec=INCEPTION_V4)
def inception_v4(x, head, *, spec, batch_norm_scale=False, dropout=0.2):
    """Inception-v4 (paper Fig. 9): 42,648,232 trainable parameters at 1000 classes (timm's 42,679,816 with BN
    gamma, ``batch_norm_scale=True``). Head: global average pooling, dropout 0.2 (keep 0.8), classifier.

    Module names follow TF-slim: ``mixed_3a``-``mixed_5a`` (stem), ``mixed_5b``-``mixed_5e`` (A),
    ``mixed_6a`` (Reduction-A), ``mixed_6b``-``mixed_6h`` (B), ``mixed_7a`` (Reduction-B), ``mixed_7b``-``mixed_7d``
    (C).
    """
    conv = _conv(batch_norm_scale)
    dropout = _head_dropout(dropout)
    x = v4_stem_convs(x, conv)
    for module, branches in v4_modules(spec):
        x = inception_module(x, branches, name=module, conv=conv)
    return head.pooled(x, dropout=dropout)


def v4_modules(spec):
    """``(name, branches)`` of Inception-v4's modules after the stem convolutions, in build order. TF-slim
    letters: a stage's reduction is "a", its blocks "b", "c", ... (``mixed_5b``-``mixed_5e``, ``mixed_6a``, ...)."""
    modules = list(V4_STEM)
    reductions = (("mixed_6a", reduction_a(*spec.reduction_a)), ("mixed_7a", spec.reduction_b), None)
    for (count, stage, branches), reduction in zip(spec.blocks, reductions):
        modules += [(f"{stage}{chr(ord('b') + i)}", branches) for i in range(count)]
        if reduction:
            modules.append(reduction)
    return tuple(modules)


@dataclasses.dataclass(frozen=True)
class InceptionResNetSpec:
    """Inception-ResNet-v1 (Szegedy et al. 2017, Figs. 10-15) or -v2 as released (Figs. 16-19, TF-slim)."""

    blocks: tuple  # number of A (35x35), B (17x17) and C (8x8) residual blocks
    a: tuple  # branches of the A, B and C blocks, concatenated before the 1x1 projection
    b: tuple
    c: tuple
    reduction_a: tuple  # Reduction-A's (k, l, m, n), Table 1
    reduction_b: tuple  # Reduction-B's branches
    mixed_5b: tuple | None = None  # branches of the Inception module after the v3 stem (v2 as released)
    final_conv: int | None = None  # 1x1 convolution after the last block (v2 as released: 1536)


# Inception-ResNet-v1 (paper Figs. 10-15): stem to 35x35x256, 5 x A, Reduction-A, 10 x B, Reduction-B, 5 x C.
# No ImageNet checkpoint was released (timm has none); branches are in the order of the TF-slim-style code the
# authors released for v2 (pooling last in both reductions), as also in facenet's inception_resnet_v1 (a face
# embedding network of this design, not an ImageNet classifier).
IR_V1 = InceptionResNetSpec(
    blocks=(5, 10, 5),
    a=((Conv(32, 1),),
       (Conv(32, 1), Conv(32, 3)),
       (Conv(32, 1), Conv(32, 3), Conv(32, 3))),
    b=((Conv(128, 1),),
       (Conv(128, 1), *asymmetric(7, 128, 128))),
    c=((Conv(192, 1),),
       (Conv(192, 1), *asymmetric(3, 192, 192))),
    reduction_a=REDUCTION_A["inception_resnet_v1"],
    reduction_b=((Conv(256, 1), Conv(384, 3, 2, "valid")),
                 (Conv(256, 1), Conv(256, 3, 2, "valid")),
                 (Conv(256, 1), Conv(256, 3), Conv(256, 3, 2, "valid")),
                 (Pool("max", 3, 2, "valid"),)),
)


def _ir_v1_stem(x, conv):
    """Inception-ResNet-v1 stem (paper Fig. 14): 299 -> 35x35x256."""
    x = stem_to_4a(x, conv)
    return conv(x, 256, 3, strides=2, padding="valid", name="conv2d_4b_3x3")


@register("inception_resnet_v1", family="inception", default_input=(299, 299, 3), min_input=75, spec=IR_V1)
def inception_resnet_v1(x, head, *, spec, residual_scale=RESIDUAL_SCALE, batch_norm_scale=False, dropout=0.2):
    """Inception-ResNet-v1 (paper Fig. 15): 22,742,808 trainable parameters at 1000 classes (derived from the
    paper's figures; no released model).

    Residual blocks ``block35_1``-``block35_5`` (A), ``block17_1``-``block17_10`` (B), ``block8_1``-``block8_5``
    (C): branches concatenated, linear 1x1 projection with bias (no BN, paper §3.2), scaled by
    ``residual_scale`` (A, B, C; default 0.17, 0.10, 0.20), added, ReLU. Reductions ``mixed_6a``, ``mixed_7a``.
    """
    conv = _conv(batch_norm_scale)
    scales = _scales(residual_scale)
    dropout = _head_dropout(dropout)
    x = _ir_v1_stem(x, conv)
    return _residual_body(x, head, spec, conv, scales, dropout)


def residual_units(spec):
    """``(name, branches, stage)`` of an Inception-ResNet after its stem, in build order: the residual blocks
    ``block35_<i>`` (stage 0, A), ``block17_<i>`` (1, B) and ``block8_<i>`` (2, C), and the reductions
    ``mixed_6a`` and ``mixed_7a`` (stage None)."""
    n_a, n_b, n_c = spec.blocks
    units = [(f"block35_{i}", spec.a, 0) for i in range(1, n_a + 1)]
    units.append(("mixed_6a", reduction_a(*spec.reduction_a), None))
    units += [(f"block17_{i}", spec.b, 1) for i in range(1, n_b + 1)]
    units.append(("mixed_7a", spec.reduction_b, None))
    units += [(f"block8_{i}", spec.c, 2) for i in range(1, n_c + 1)]
    return tuple(units)


def _residual_body(x, head, spec, conv, scales, dropout, last_activation="relu"):
    units = residual_units(spec)
    for index, (name, branches, stage) in enumerate(units):
        if stage is None:
            x = inception_module(x, branches, name=name, conv=conv)
        elif last_activation is None and index == len(units) - 1:
            # the released Inception-ResNet-v2: the last C block is unscaled and linear
            x = residual_inception_module(x, branches, name=name, conv=conv, scale=1.0, activation=None)
        else:
            x = residual_inception_module(x, branches, name=name, conv=conv, scale=scales[stage])
    if spec.final_conv:
        x = conv(x, spec.final_conv, 1, name="conv2d_7b_1x1")
    return head.pooled(x, dropout=dropout)


# Inception-ResNet-v2 as released by the authors (TF-slim inception_resnet_v2.py, = keras.applications
# .InceptionResNetV2): the paper's A/B/C blocks (Figs. 16, 17, 19), Reduction-A (256, 256, 384, 384) and
# Reduction-B (Fig. 18), on the Inception-v3 stem plus a 35x35 Inception module (mixed_5b, 320 channels), with
# 10 / 20 / 10 blocks and a final 1x1 convolution to 1536 channels. The paper's Fig. 15 (Inception-v4 stem,
# 5 / 10 / 5 blocks) has inconsistent widths (B and C blocks 1154 and 2048 wide after Reduction-A and -B give
# 1152 and 2146) and was never released.
IR_V2 = InceptionResNetSpec(
    blocks=(10, 20, 10),
    mixed_5b=((Conv(96, 1),),
              (Conv(48, 1), Conv(64, 5)),
              (Conv(64, 1), Conv(96, 3), Conv(96, 3)),
              (Pool("avg"), Conv(64, 1))),
    a=((Conv(32, 1),),
       (Conv(32, 1), Conv(32, 3)),
       (Conv(32, 1), Conv(48, 3), Conv(64, 3))),
    b=((Conv(192, 1),),
       (Conv(128, 1), *asymmetric(7, 160, 192))),
    c=((Conv(192, 1),),
       (Conv(192, 1), *asymmetric(3, 224, 256))),
    reduction_a=REDUCTION_A["inception_resnet_v2"],
    reduction_b=((Conv(256, 1), Conv(384, 3, 2, "valid")),
                 (Conv(256, 1), Conv(288, 3, 2, "valid")),
                 (Conv(256, 1), Conv(288, 3), Conv(320, 3, 2, "valid")),
                 (Pool("max", 3, 2, "valid"),)),
    final_conv=1536,
)


@register("inception_resnet_v2", family="inception", default_input=(299, 299, 3), min_input=75, spec=IR_V2)
def inception_resnet_v2(x, head, *, spec, residual_scale=RESIDUAL_SCALE, batch_norm_scale=False, dropout=0.2):
    """Inception-ResNet-v2 as released (TF-slim): 55,813,192 trainable parameters at 1000 classes, exactly
    keras.applications.InceptionResNetV2 (timm's 55,843,464 with ``batch_norm_scale=True``).

    Blocks ``block35_1``-``block35_10`` (scale 0.17), ``block17_1``-``block17_20`` (0.10), ``block8_1``-
    ``block8_10`` (0.20; the last one unscaled and without ReLU, as released), ``conv2d_7b_1x1`` (1536), global
    average pooling, dropout 0.2, classifier. ``residual_scale`` sets the (A, B, C) scales.
    """
    conv = _conv(batch_norm_scale)
    scales = _scales(residual_scale)
    dropout = _head_dropout(dropout)
    x = v3_stem(x, conv)
    x = inception_module(x, spec.mixed_5b, name="mixed_5b", conv=conv)
    return _residual_body(x, head, spec, conv, scales, dropout, last_activation=None)
