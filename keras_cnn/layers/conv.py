"""Convolution blocks used across families."""

import keras

from keras_cnn.layers.normalization import BatchNormalization

BN_EPSILON = 1e-5  # as in the papers' Caffe/Torch models and torchvision, so ported weights behave alike
PADDINGS = ("same", "symmetric")  # a family's ``padding`` option: TensorFlow's or PyTorch's zero padding


def pad(x, kernel_size, *, name, strides=1, padding="same", dilation_rate=1):
    """``(x, keras_padding)`` for a convolution or pooling window with ``padding`` ``"valid"``, ``"same"`` or
    ``"symmetric"``.

    ``"same"`` is TensorFlow's: a strided window on an even map pads 0 before and 1 after, as the TF-slim and
    keras.applications checkpoints were trained. ``"symmetric"`` is PyTorch's ``padding=k // 2``: the same number
    of zeros on both sides (a ``ZeroPadding2D`` named ``<name>_pad`` before a valid window), as torchvision's and
    timm's checkpoints were trained. For a stride-1 odd window both are equal and no layer is added.
    """
    if padding not in ("valid", *PADDINGS):
        raise ValueError(f"padding must be one of 'valid', 'same', 'symmetric'; received {padding!r}.")
    if padding != "symmetric":
        return x, padding
    sizes = (kernel_size,) * 2 if isinstance(kernel_size, int) else tuple(kernel_size)
    stride = (strides,) * 2 if isinstance(strides, int) else tuple(strides)
    dilation = (dilation_rate,) * 2 if isinstance(dilation_rate, int) else tuple(dilation_rate)
    if stride == (1, 1) and all(k % 2 for k in sizes):
        return x, "same"
    amounts = tuple(((k - 1) * d // 2,) * 2 for k, d in zip(sizes, dilation))
    return keras.layers.ZeroPadding2D(amounts, name=f"{name}_pad")(x), "valid"


def conv_bn_act(x, filters, kernel_size, *, name, strides=1, padding="same", groups=1, batch_norm=False,
                activation="relu", dilation_rate=1, use_bias=None, epsilon=BN_EPSILON, zero_init=False):
    """Convolution, optional batch normalisation, activation: ``name``, ``name_bn``, ``name_<activation>``.
    ``padding`` is ``"valid"``, ``"same"`` or ``"symmetric"`` (see :func:`pad`).

    Without batch normalisation the activation is fused into the ``Conv2D`` (as keras.applications does), so
    the layer ``name`` is the whole block. With it the convolution has no bias by default, since BN cancels
    it (Ioffe & Szegedy, 2015); ``use_bias=True`` keeps it where checkpoints have one (torchvision's VGG-BN).
    ``epsilon`` is the BN epsilon (1e-3 for the TensorFlow-born families: MobileNet, EfficientNet).
    ``zero_init`` starts the block's output at zero (BN gamma, or the kernel without BN): the last layer of a
    residual branch, so the unit starts as the identity (Goyal et al. 2017, "Accurate, Large Minibatch SGD").
    """
    use_bias = not batch_norm if use_bias is None else use_bias
    x, padding = pad(x, kernel_size, name=name, strides=strides, padding=padding, dilation_rate=dilation_rate)
    conv = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, groups=groups,
                               dilation_rate=dilation_rate, use_bias=use_bias,
                               activation=None if batch_norm else activation, name=name,
                               kernel_initializer="zeros" if zero_init and not batch_norm else "glorot_uniform")
    if not batch_norm:
        return conv(x)
    return bn_act(conv(x), name=name, activation=activation, epsilon=epsilon, zero_init=zero_init)


def bn_act(x, *, name, activation="relu", epsilon=BN_EPSILON, zero_init=False):
    """Batch normalisation ``name_bn`` then the activation ``name_<activation>`` (none if ``activation`` is None):
    the tail of :func:`conv_bn_act`, for blocks whose convolution is not a ``Conv2D`` (depthwise)."""
    x = BatchNormalization(epsilon=epsilon, gamma_initializer="zeros" if zero_init else "ones",
                                        name=f"{name}_bn")(x)
    if activation is None:
        return x
    suffix = activation if isinstance(activation, str) else "act"
    return keras.layers.Activation(activation, name=f"{name}_{suffix}")(x)
