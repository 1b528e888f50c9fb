"""Blocks of the Inception family (GoogLeNet to Inception-ResNet), written once.

A module is described as data that mirrors the papers' figures: a tuple of *branches*, each a tuple of ops
applied in turn to the module input, whose outputs are concatenated on the channel axis::

    GOOGLENET_3A = ((Conv(64, 1),),
                    (Conv(96, 1), Conv(128, 3)),
                    (Conv(16, 1), Conv(32, 5)),
                    (Pool("max"), Conv(32, 1)))

``Conv`` is a convolution followed by the model's normalisation and ReLU (``ConvBN``), ``Pool`` a pooling layer
and ``Split`` a fork whose convolutions all read the same tensor and are concatenated (Inception-v3's expanded
8x8 modules). ``asymmetric(n, ...)`` is the factorised n x n convolution (1 x n then n x 1, Szegedy et al. 2016,
seed 003 §4.3.2.1) and ``reduction_a(k, l, m, n)`` the Reduction-A module of Inception-v4 / Inception-ResNet.

Layer names are ``<module>_b<branch>_<op>_<kernel>`` (``mixed_6b_b3_2_7x1``), pools ``<module>_b<branch>_<op>_
<kind>pool``, fork members ``<module>_b<branch>_<op><a|b>_<kernel>``; the concatenation is named ``<module>``.
"""

import dataclasses

import keras

from keras_cnn import _validate
from keras_cnn.layers.normalization import BatchNormalization


@dataclasses.dataclass(frozen=True)
class Conv:
    """Convolution + normalisation + ReLU with ``filters`` outputs and a ``kernel`` (int or (h, w))."""

    filters: int
    kernel: int | tuple
    strides: int = 1
    padding: str = "same"


@dataclasses.dataclass(frozen=True)
class Pool:
    """``"avg"`` or ``"max"`` pooling (3x3, stride 1, same padding unless given)."""

    kind: str
    size: int = 3
    strides: int = 1
    padding: str = "same"


@dataclasses.dataclass(frozen=True)
class Split:
    """Convolutions that all read the same tensor; their outputs are concatenated (a fork inside a branch)."""

    convs: tuple


def asymmetric(n, filters_1xn, filters_nx1):
    """The factorised n x n convolution: a 1 x n convolution followed by an n x 1 one (two ops)."""
    return (Conv(filters_1xn, (1, n)), Conv(filters_nx1, (n, 1)))


def reduction_a(k, l, m, n):  # noqa: E741  (the paper's names)
    """Reduction-A (Szegedy et al. 2017, Fig. 7; seed 003 §4.4 k, l, m, n table): 35x35 -> 17x17.

    Branches: 3x3/2 max pooling | 3x3/2 conv ``n`` | 1x1 ``k`` -> 3x3 ``l`` -> 3x3/2 ``m`` (valid padding).
    Output channels: input + n + m.
    """
    return ((Pool("max", 3, 2, "valid"),),
            (Conv(n, 3, 2, "valid"),),
            (Conv(k, 1), Conv(l, 3), Conv(m, 3, 2, "valid")))


@dataclasses.dataclass(frozen=True)
class ConvBN:
    """How one model builds ``Conv``: convolution, optional batch normalisation, activation.

    ``batch_norm=False`` gives a biased convolution with the activation fused (GoogLeNet as in the paper).
    With batch normalisation the convolution has no bias; ``scale`` keeps BN's gamma (True as in Caffe,
    torchvision and timm; False as in TF-slim and keras.applications, whose Inception models have no gamma)
    and ``epsilon`` is the model's BN epsilon. Layers: ``name``, ``name_bn``, ``name_relu``.
    """

    batch_norm: bool = True
    scale: bool = True
    epsilon: float = 1e-3

    def __call__(self, x, filters, kernel, *, name, strides=1, padding="same", activation="relu"):
        conv = keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=not self.batch_norm,
                                   activation=None if self.batch_norm else activation, name=name)
        x = conv(x)
        if not self.batch_norm:
            return x
        x = BatchNormalization(epsilon=self.epsilon, scale=self.scale, name=f"{name}_bn")(x)
        if activation is None:
            return x
        return keras.layers.Activation(activation, name=f"{name}_{activation}")(x)


def _kernel_name(kernel):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return f"{kh}x{kw}"


def _apply(x, op, conv, name):
    if isinstance(op, Conv):
        return conv(x, op.filters, op.kernel, strides=op.strides, padding=op.padding,
                    name=f"{name}_{_kernel_name(op.kernel)}")
    if isinstance(op, Pool):
        layer = {"avg": keras.layers.AveragePooling2D, "max": keras.layers.MaxPooling2D}[op.kind]
        return layer(op.size, strides=op.strides, padding=op.padding, name=f"{name}_{op.kind}pool")(x)
    if isinstance(op, Split):
        outs = [_apply(x, sub, conv, f"{name}{chr(ord('a') + i)}") for i, sub in enumerate(op.convs)]
        return keras.layers.Concatenate(name=f"{name}_concat")(outs)
    raise TypeError(f"unknown Inception op {op!r}")


def inception_module(x, branches, *, name, conv, output_name=None):
    """Apply ``branches`` (see the module docstring) to ``x`` and concatenate them (layer ``output_name``,
    default ``name``)."""
    outs = []
    for b, branch in enumerate(branches, start=1):
        y = x
        for i, op in enumerate(branch, start=1):
            y = _apply(y, op, conv, f"{name}_b{b}_{i}")
        outs.append(y)
    return keras.layers.Concatenate(name=output_name or name)(outs)


def residual_inception_module(x, branches, *, name, conv, scale, activation="relu"):
    """Inception-ResNet block (Szegedy et al. 2017, Figs. 10-13, 16-19 and §3.3).

    The branches are concatenated (``name_mixed``), projected back to the input width by a linear 1x1
    convolution with bias and no batch normalisation (``name_up``), scaled by ``scale`` and added to the input
    (``ScaledResidual``), then ReLU. The block output is the layer ``name``.
    """
    mixed = inception_module(x, branches, name=name, conv=conv, output_name=f"{name}_mixed")
    up = keras.layers.Conv2D(x.shape[-1], 1, use_bias=True, name=f"{name}_up")(mixed)
    out = ScaledResidual(scale, name=name if activation is None else f"{name}_add")([x, up])
    if activation is None:
        return out
    return keras.layers.Activation(activation, name=name)(out)


@keras.saving.register_keras_serializable(package="keras_cnn")
class ScaledResidual(keras.layers.Layer):
    """``shortcut + scale * residual`` for inputs ``[shortcut, residual]``: the residual scaling of
    Inception-ResNet (Szegedy et al. 2017, §3.3, Fig. 20; scales 0.1-0.3 stabilise very wide residual blocks).
    ``scale=1`` is a plain addition."""

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = _validate.check_float("scale", scale, minimum=0.0)

    def call(self, inputs):
        shortcut, residual = inputs
        if self.scale == 1.0:
            return shortcut + residual
        return shortcut + residual * self.scale

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}
