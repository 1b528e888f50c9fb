"""Pooling that Keras does not ship: Caffe/PyTorch ``ceil_mode`` max pooling, and average pooling as a
depthwise convolution (for int8 TFLite)."""

import keras
from keras import ops

from keras_cnn import _validate


class _SquarePooling2D(keras.layers.Layer):
    """``pool_size`` x ``pool_size`` windows at ``strides``, no padding: the arguments, output shape and config
    that the pooling layers below share; a subclass gives ``call`` and ``_output_size``."""

    def __init__(self, pool_size=3, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _validate.check_int("pool_size", pool_size, minimum=1)
        self.strides = _validate.check_int("strides", strides, minimum=1)

    def compute_output_shape(self, input_shape):
        def size(n):
            return None if n is None else self._output_size(n)

        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides}


@keras.saving.register_keras_serializable(package="keras_cnn")
class CeilModeMaxPooling2D(_SquarePooling2D):
    """Max pooling whose output size rounds up: ``ceil((n - pool_size) / strides) + 1`` (Caffe's default and
    PyTorch's ``ceil_mode=True``), so the last window may hang over the bottom/right edge and is clipped.

    Keras has only ``floor`` ("valid") and "same" rounding; "same" agrees for even sizes only (SqueezeNet's
    27x27 map would pool to 14x14 instead of the paper's 13x13). The overhang is filled by mirroring the edge
    (at most ``strides - 1`` rows and columns), so the filled cells repeat values already inside the clipped
    window and never change its maximum, whatever the sign of the input. Runs as TFLite MIRROR_PAD +
    MAX_POOL_2D, both int8 builtins.
    """

    def __init__(self, pool_size=3, strides=2, **kwargs):
        super().__init__(pool_size, strides, **kwargs)
        if 2 * (self.strides - 1) > self.pool_size:
            raise ValueError(
                f"CeilModeMaxPooling2D needs 2 * (strides - 1) <= pool_size so the mirrored overhang stays inside "
                f"the last window; received pool_size={pool_size}, strides={strides}."
            )

    def _overhang(self, size):
        return (-(size - self.pool_size)) % self.strides

    def call(self, inputs):
        shape = ops.shape(inputs)
        pad_h, pad_w = self._overhang(shape[1]), self._overhang(shape[2])
        if not (isinstance(pad_h, int) and isinstance(pad_w, int) and pad_h == pad_w == 0):
            inputs = ops.pad(inputs, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="symmetric")
        return ops.max_pool(inputs, self.pool_size, self.strides, padding="valid")

    def _output_size(self, n):
        return -(-(n - self.pool_size) // self.strides) + 1


@keras.saving.register_keras_serializable(package="keras_cnn")
class DepthwiseAveragePooling2D(_SquarePooling2D):
    """Average pooling ("valid" windows) computed as a depthwise convolution with a constant ``1 / k²`` kernel.

    The same numbers as ``AveragePooling2D(pool_size, strides)`` (up to float rounding) and no weights. It
    exists for full-integer TFLite: AVERAGE_POOL_2D must keep its input's int8 scale, so a pooled shortcut that
    is concatenated ties the scale of the tensor it pools to the concatenation's range, and in ShuffleNet v1
    that clips the residual sums that feed a stride-2 unit. A DEPTHWISE_CONV_2D requantizes its output, which
    cuts that tie (docs/export.md).
    """

    def call(self, inputs):
        channels = inputs.shape[-1]
        kernel = ops.full((self.pool_size, self.pool_size, channels, 1), 1.0 / self.pool_size ** 2,
                          dtype=inputs.dtype)
        return ops.depthwise_conv(inputs, kernel, self.strides, padding="valid")

    def _output_size(self, n):
        return (n - self.pool_size) // self.strides + 1


@keras.saving.register_keras_serializable(package="keras_cnn")
class PaddedMaxPooling2D(_SquarePooling2D):
    """Max pooling with ``padding`` cells on every side that never win the maximum: PyTorch's
    ``MaxPool2d(pool_size, strides, padding)``, whatever the sign of the input (a pooling after BN, as in timm's
    Xception, cannot pad with zeros).

    Keras's "same" pads only after the map when its size is even, so its windows start one cell later than
    PyTorch's. The padding mirrors the edge, as :class:`CeilModeMaxPooling2D` does: with ``padding <= pool_size
    // 2`` (PyTorch's own limit) every mirrored cell repeats a value inside each window that covers it. Runs as
    TFLite MIRROR_PAD + MAX_POOL_2D.
    """

    def __init__(self, pool_size=3, strides=2, padding=1, **kwargs):
        super().__init__(pool_size, strides, **kwargs)
        self.padding = _validate.check_int("padding", padding, minimum=0)
        if 2 * self.padding > self.pool_size:
            raise ValueError(f"padding must be at most pool_size // 2 = {self.pool_size // 2} (as PyTorch's "
                             f"MaxPool2d); received padding={padding} with pool_size={pool_size}.")

    def call(self, inputs):
        p = self.padding
        if p:
            inputs = ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="symmetric")
        return ops.max_pool(inputs, self.pool_size, self.strides, padding="valid")

    def _output_size(self, n):
        return (n + 2 * self.padding - self.pool_size) // self.strides + 1

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}
