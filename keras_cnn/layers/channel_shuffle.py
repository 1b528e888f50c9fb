"""Channel shuffle and channel split (Zhang et al. 2018, ShuffleNet; Ma et al. 2018, ShuffleNet V2), seed 003 §3.9.

Both run as plain 4-D TFLite builtins (RESHAPE, TRANSPOSE, SPLIT) that quantize to int8, so a ShuffleNet exports
to a full-integer model without custom or Flex operators.
"""

import keras
from keras import ops

from keras_cnn import _validate


@keras.saving.register_keras_serializable(package="keras_cnn")
class ChannelShuffle(keras.layers.Layer):
    """Interleave the channels of ``groups`` groups, so the next grouped convolution sees every group.

    As in the paper (§3.1): reshape the C channels to ``(groups, C / groups)``, transpose, flatten; output
    channel ``i * groups + j`` is input channel ``j * (C / groups) + i`` (torchvision's ``channel_shuffle``).
    Channels-last input ``(N, H, W, C)`` would need a 5-D ``(N, H, W, g, C/g)`` view; the batch and height
    axes are merged instead, so every tensor stays 4-D (TFLite's TRANSPOSE and most delegates stop at 4-D).
    """

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        self.groups = _validate.check_int("groups", groups, minimum=1)

    def build(self, input_shape):
        _check_divisible(self, input_shape, self.groups, "groups")

    def call(self, inputs):
        shape = ops.shape(inputs)
        channels = inputs.shape[-1]
        x = ops.reshape(inputs, (-1, shape[2], self.groups, channels // self.groups))
        x = ops.transpose(x, (0, 1, 3, 2))
        return ops.reshape(x, (-1, shape[1], shape[2], channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package="keras_cnn")
class ChannelSplit(keras.layers.Layer):
    """Split the channels into ``splits`` equal parts (a list of tensors, first channels first).

    ShuffleNet V2's channel split (§3), and the split form of a grouped convolution.
    """

    def __init__(self, splits=2, **kwargs):
        super().__init__(**kwargs)
        self.splits = _validate.check_int("splits", splits, minimum=1)

    def build(self, input_shape):
        _check_divisible(self, input_shape, self.splits, "splits")

    def call(self, inputs):
        return ops.split(inputs, self.splits, axis=-1)

    def compute_output_shape(self, input_shape):
        part = (*input_shape[:-1], input_shape[-1] // self.splits)
        return [part] * self.splits

    def get_config(self):
        return {**super().get_config(), "splits": self.splits}


def _check_divisible(layer, input_shape, parts, arg):
    channels = input_shape[-1]
    if channels is None or channels % parts:
        raise ValueError(
            f"{type(layer).__name__} {layer.name!r}: the number of channels must be a known multiple of "
            f"{arg}={parts}; received input shape {tuple(input_shape)}."
        )
