"""Concatenate → BN → ReLU → convolution as one layer that can recompute its activations in the backward pass.

The memory-efficient DenseNet (Pleiss et al., "Memory-Efficient Implementation of DenseNets", 2017; seed 003
§8.4) keeps neither the concatenation nor the BN/ReLU output of a dense layer: both are rebuilt from the
(already stored) outputs of the earlier layers when the gradient is needed.
"""

import keras

from keras_cnn import _validate
from keras_cnn.layers.conv import BN_EPSILON
from keras_cnn.layers.normalization import BatchNormalization


@keras.saving.register_keras_serializable(package="keras_cnn")
class ConcatBNReLUConv(keras.layers.Layer):
    """``conv(relu(bn(concat(inputs))))`` on a list of channels-last maps, optionally rematerialised.

    With ``recompute=True`` a training call runs under ``keras.remat`` (``tf.recompute_grad`` on TensorFlow):
    only the inputs are kept for the backward pass, and the concatenation, normalisation, ReLU (and the
    convolution's input) are computed again there. The batch statistics are returned by the rematerialised
    function and the moving averages are updated once, outside it, so they follow exactly the same path as a
    plain ``BatchNormalization`` (the recomputation would otherwise update them a second time, the problem the
    original Lua code solves by saving and restoring them). Inference, and ``recompute=False``, run the same
    operations without rematerialisation.

    The weights are those of the sub-layers ``bn`` (gamma, beta, moving mean, moving variance) and ``conv``
    (kernel, no bias: the next consumer normalises its input), in the order of a ``BatchNormalization``
    followed by a ``Conv2D``, so ``set_weights`` transfers between this layer and that pair of layers.
    """

    def __init__(self, filters, kernel_size=1, recompute=True, epsilon=BN_EPSILON, momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        self.filters = _validate.check_int("filters", filters, minimum=1)
        self.kernel_size = _validate.check_int("kernel_size", kernel_size, minimum=1)
        self.recompute = _validate.check_bool("recompute", recompute)
        self.epsilon = _validate.check_float("epsilon", epsilon, minimum=0.0)
        self.momentum = _validate.check_float("momentum", momentum, minimum=0.0, maximum=1.0)
        self.bn = BatchNormalization(epsilon=self.epsilon, momentum=self.momentum, name="bn")
        self.conv = keras.layers.Conv2D(self.filters, self.kernel_size, padding="same", use_bias=False,
                                        name="conv")

    def build(self, input_shape):
        shape = self._concat_shape(input_shape)
        self.bn.build(shape)
        self.conv.build(shape)

    def call(self, inputs, training=None):
        inputs = list(inputs)
        if not (training and self.bn.trainable):
            return self.conv(keras.ops.relu(self.bn(self._concat(inputs), training=False)))
        segment = keras.remat(self._batch_segment) if self.recompute else self._batch_segment
        outputs, mean, variance = segment(*inputs)
        self._update_moving_statistics(keras.ops.stop_gradient(mean), keras.ops.stop_gradient(variance))
        return outputs

    def _batch_segment(self, *inputs):
        """The part that is recomputed: normalise with the batch statistics, which are returned as well."""
        x = self._concat(inputs)
        x = keras.ops.cast(x, keras.backend.result_type(x.dtype, "float32"))  # BN statistics in float32
        x, mean, variance = self.bn.normalize_with_batch_statistics(x)  # what the plain model's BN computes
        x = keras.ops.cast(keras.ops.relu(x), self.compute_dtype)
        return self.conv(x), mean, variance

    def _update_moving_statistics(self, mean, variance):
        for moving, batch in ((self.bn.moving_mean, mean), (self.bn.moving_variance, variance)):
            moving.assign(moving * self.momentum + keras.ops.cast(batch, moving.dtype) * (1.0 - self.momentum))

    @staticmethod
    def _concat(inputs):
        return inputs[0] if len(inputs) == 1 else keras.ops.concatenate(inputs, axis=-1)

    @staticmethod
    def _concat_shape(input_shape):
        shapes = [tuple(s) for s in input_shape]
        channels = [s[-1] for s in shapes]
        if any(c is None for c in channels):
            raise ValueError(f"ConcatBNReLUConv needs known channel counts; received input shapes {shapes}.")
        return (*shapes[0][:-1], sum(channels))

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(self._concat_shape(input_shape))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "recompute": self.recompute, "epsilon": self.epsilon, "momentum": self.momentum}
