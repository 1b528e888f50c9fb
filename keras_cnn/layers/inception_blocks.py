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
Branches are concatenated in the order listed, which is the channel order of the released checkpoints (TF-slim's
``Branch_0``, ``Branch_1``, ...; the papers' figures do not fix it), so the tables list them in that order.

Layer names are ``<module>_b<branch>_<op>_<kernel>`` (``mixed_6b_b3_2_7x1``), pools ``<module>_b<branch>_<op>_
<kind>pool``, fork members ``<module>_b<branch>_<op><a|b>_<kernel>``; the concatenation is named ``<module>``.
:func:`conv_names` lists a module's convolutions in the order they are built (the order keras.applications
numbers its unnamed layers in).
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from keras_cnn import _validate
from keras_cnn.layers.conv import pad
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

    Branches: 3x3/2 conv ``n`` | 1x1 ``k`` -> 3x3 ``l`` -> 3x3/2 ``m`` | 3x3/2 max pooling (valid padding), in
    TF-slim's order (``Mixed_6a`` of Inception-v4 and Inception-ResNet-v2; timm and keras.applications alike):
    channels ``[n | m | input]``. Output channels: input + n + m.
    """
    return ((Conv(n, 3, 2, "valid"),),
            (Conv(k, 1), Conv(l, 3), Conv(m, 3, 2, "valid")),
            (Pool("max", 3, 2, "valid"),))


@dataclasses.dataclass(frozen=True)
class ConvBN:
    """How one model builds ``Conv``: convolution, optional batch normalisation, activation.

    ``batch_norm=False`` gives a biased convolution with the activation fused (GoogLeNet as in the paper).
    With batch normalisation the convolution has no bias; ``scale`` keeps BN's gamma (True as in Caffe,
    torchvision and timm; False as in TF-slim and keras.applications, whose Inception models have no gamma)
    and ``epsilon`` is the model's BN epsilon. Layers: ``name``, ``name_bn``, ``name_relu``; ``padding`` is
    ``"valid"``, ``"same"`` or ``"symmetric"`` (PyTorch's ``k // 2`` on both sides: :func:`keras_cnn.layers.conv.pad`).
    """

    batch_norm: bool = True
    scale: bool = True
    epsilon: float = 1e-3

    def __call__(self, x, filters, kernel, *, name, strides=1, padding="same", activation="relu"):
        x, padding = pad(x, kernel, name=name, strides=strides, padding=padding)
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


def _conv_name(op, name):
    return f"{name}_{_kernel_name(op.kernel)}"


def _member_name(name, index):
    return f"{name}{chr(ord('a') + index)}"  # fork members: <module>_b<branch>_<op>a, ...b


def _apply(x, op, conv, name, count_include_pad=False):
    if isinstance(op, Conv):
        return conv(x, op.filters, op.kernel, strides=op.strides, padding=op.padding, name=_conv_name(op, name))
    if isinstance(op, Pool):
        return _pool(x, op, f"{name}_{op.kind}pool", count_include_pad)
    if isinstance(op, Split):
        outs = [_apply(x, sub, conv, _member_name(name, i)) for i, sub in enumerate(op.convs)]
        return keras.layers.Concatenate(name=f"{name}_concat")(outs)
    raise TypeError(f"unknown Inception op {op!r}")


def _pool(x, op, name, count_include_pad):
    """A ``Pool`` op. "same" average pooling divides by the window cells inside the map (TensorFlow, PyTorch's
    ``count_include_pad=False``); with ``count_include_pad`` it divides by the whole window, counting the zero
    padding (PyTorch's default ``F.avg_pool2d(x, 3, 1, padding=1)``, torchvision's and timm's Inception-v3), done
    as explicit zero padding (``<name>_pad``) before a "valid" window."""
    if op.kind == "max":
        return keras.layers.MaxPooling2D(op.size, strides=op.strides, padding=op.padding, name=name)(x)
    padding = op.padding
    if count_include_pad and padding == "same":
        if op.strides != 1 or op.size % 2 == 0:
            raise ValueError(f"count_include_pad needs stride-1 odd average windows (PyTorch's padding=k // 2); "
                             f"received {op!r}.")
        x = keras.layers.ZeroPadding2D(op.size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    return keras.layers.AveragePooling2D(op.size, strides=op.strides, padding=padding, name=name)(x)


def inception_module(x, branches, *, name, conv, output_name=None, count_include_pad=False):
    """Apply ``branches`` (see the module docstring) to ``x`` and concatenate them (layer ``output_name``,
    default ``name``). ``count_include_pad`` makes the "same" average pools count their zero padding (PyTorch's
    default; :func:`_pool`)."""
    outs = []
    for b, branch in enumerate(branches, start=1):
        y = x
        for i, op in enumerate(branch, start=1):
            y = _apply(y, op, conv, f"{name}_b{b}_{i}", count_include_pad)
        outs.append(y)
    return keras.layers.Concatenate(name=output_name or name)(outs)


def conv_names(branches, *, name):
    """The convolution layers :func:`inception_module` builds for ``branches`` under ``name``, in build order:
    branch by branch, op by op, fork members in turn (the order keras.applications creates, and so numbers, the
    unnamed ``conv2d_<n>`` layers of its Inception models)."""
    names = []
    for b, branch in enumerate(branches, start=1):
        for i, op in enumerate(branch, start=1):
            prefix = f"{name}_b{b}_{i}"
            if isinstance(op, Conv):
                names.append(_conv_name(op, prefix))
            elif isinstance(op, Split):
                names += [_conv_name(sub, _member_name(prefix, j)) for j, sub in enumerate(op.convs)]
    return names


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


def adaptive_windows(size, output_size):
    """``(start, end)`` rows of PyTorch's ``adaptive_avg_pool2d`` cells: cell ``i`` of ``output_size`` averages
    input rows ``floor(i * size / output_size)`` to ``ceil((i + 1) * size / output_size) - 1``."""
    return [((i * size) // output_size, -(-((i + 1) * size) // output_size)) for i in range(output_size)]


@keras.saving.register_keras_serializable(package="keras_cnn")
class AdaptiveAveragePooling2D(keras.layers.Layer):
    """PyTorch's ``F.adaptive_avg_pool2d(x, (output_size, output_size))`` on a map of fixed height and width.

    The cells' windows (:func:`adaptive_windows`) overlap or differ in size when ``output_size`` does not divide
    the map (torchvision GoogLeNet's auxiliary heads pool 14x14 to 4x4 with windows of 4 at rows 0, 3, 7, 10,
    which no fixed-stride pooling gives), so the mean is taken as two constant averaging matrices, rows then
    columns. No weights.
    """

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        self.output_size = _validate.check_int("output_size", output_size, minimum=1)

    def build(self, input_shape):
        height, width = input_shape[1:3]
        if height is None or width is None:
            raise ValueError("AdaptiveAveragePooling2D needs a fixed input height and width; received "
                             f"{tuple(input_shape)}.")
        self._rows, self._cols = (self._matrix(n) for n in (height, width))

    def _matrix(self, size):
        matrix = np.zeros((self.output_size, size))  # float64: cast to the input dtype in call
        for i, (start, end) in enumerate(adaptive_windows(size, self.output_size)):
            matrix[i, start:end] = 1.0 / (end - start)
        return matrix

    def call(self, inputs):
        rows = ops.convert_to_tensor(self._rows, dtype=inputs.dtype)
        cols = ops.convert_to_tensor(self._cols, dtype=inputs.dtype)
        x = ops.einsum("ih,bhwc->biwc", rows, inputs)
        return ops.einsum("jw,biwc->bijc", cols, x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_size, self.output_size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size}
