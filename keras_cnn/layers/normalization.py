"""Normalisation layers that Keras does not ship, and Keras's batch normalisation with a fused inference pass."""

import keras
import tensorflow as tf

from keras_cnn import _validate


@keras.saving.register_keras_serializable(package="keras_cnn")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalisation across channels (Krizhevsky et al., 2012, §3.3).

    ``b_i = a_i / (k + alpha * sum_{j=i-n/2}^{i+n/2} a_j^2) ** beta`` over ``size = n`` neighbouring channels
    (channels last). ``alpha`` multiplies the sum as in the AlexNet paper; Caffe and PyTorch divide it by
    ``n`` first, so their ``alpha`` is ``n`` times ours. Runs as TensorFlow's ``LRN`` op, which TFLite and
    ONNX both have as a built-in operator.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, **kwargs):
        super().__init__(**kwargs)
        self.size = _validate.check_int("size", size, minimum=1)
        if self.size % 2 == 0:
            raise ValueError(f"size must be an odd number of channels (a centred window); received {size}.")
        self.alpha = _validate.check_float("alpha", alpha, minimum=0.0)
        self.beta = _validate.check_float("beta", beta, minimum=0.0)
        self.k = _validate.check_float("k", k, minimum=0.0)

    def call(self, inputs):
        return tf.nn.local_response_normalization(
            inputs, depth_radius=self.size // 2, bias=self.k, alpha=self.alpha, beta=self.beta
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}


@keras.saving.register_keras_serializable(package="keras_cnn")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose inference pass on 4-D channels-last float32 maps is one fused op.

    Keras 3 normalises with ``tf.nn.batch_normalization``: a multiply and an add, each a pass over the whole
    feature map. TensorFlow's ``FusedBatchNormV3`` with ``is_training=False`` computes the same
    ``gamma * (x - mean) / sqrt(variance + epsilon) + beta`` in one pass (and grappler's remapper can fold it
    into a preceding ``Conv2D`` on CPU), so inference runs faster than with Keras's layer
    (bench/bench_peers.py --keras-bn; docs/benchmarks.md). Training uses the same op with the batch's statistics
    (``is_training=True``, one op forward and one backward where Keras runs moments, a multiply and an add, each with
    its gradient) and updates the moving statistics as Keras does. Masks, renorm, synchronized statistics, other
    ranks, axes or dtypes (mixed precision) and other backends take the Keras path unchanged; weights, config and
    parameter count are Keras's.
    """

    def call(self, inputs, training=None, mask=None):
        if mask is not None or not self._fusable(inputs):
            return super().call(inputs, training=training, mask=mask)
        if training and self.trainable:
            if self.renorm or self.synchronized:
                return super().call(inputs, training=training, mask=mask)
            return self._fused_training(inputs)
        return self._fused(inputs, self.moving_mean, self.moving_variance, is_training=False)[0]

    def _fused(self, inputs, mean, variance, is_training):
        mean = tf.convert_to_tensor(mean)
        variance = tf.convert_to_tensor(variance)
        channels = inputs.shape[-1]
        # scale=False / center=False layers (Inception v3) have no gamma / beta: the fused op needs both
        scale = tf.convert_to_tensor(self.gamma) if self.scale else tf.ones((channels,), "float32")
        offset = tf.convert_to_tensor(self.beta) if self.center else tf.zeros((channels,), "float32")
        outputs, batch_mean, batch_variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=scale, offset=offset, mean=mean, variance=variance, epsilon=self.epsilon,
            exponential_avg_factor=1.0, is_training=is_training)
        return outputs, batch_mean, batch_variance

    def _fused_training(self, inputs):
        """Normalise with the batch's statistics in one op (and its one-op gradient), then update the moving
        statistics exactly as Keras does."""
        outputs, mean, variance = self.normalize_with_batch_statistics(inputs)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs

    def normalize_with_batch_statistics(self, inputs):
        """``(outputs, mean, variance)``: ``inputs`` normalised with their own statistics (biased variance, as
        Keras's moving statistics take it); the moving statistics are not touched. Fused for 4-D float32
        channels-last maps, Keras's moments otherwise. Also what :class:`ConcatBNReLUConv` recomputes, so the
        memory-efficient DenseNet computes what the plain one does."""
        if not self._fusable(inputs) or self.renorm or self.synchronized:
            axes = [i for i in range(len(inputs.shape)) if i != self.axis % len(inputs.shape)]
            mean, variance = keras.ops.moments(inputs, axes=axes)
            outputs = keras.ops.batch_normalization(inputs, mean, variance, axis=self.axis, offset=self.beta,
                                                    scale=self.gamma, epsilon=self.epsilon)
            return outputs, mean, variance
        empty = tf.zeros((0,), "float32")
        outputs, mean, variance = self._fused(inputs, empty, empty, is_training=True)
        shape = tf.shape(inputs)
        count = tf.cast(shape[0] * shape[1] * shape[2], "float32")
        # the fused op returns the unbiased (Bessel-corrected) variance
        return outputs, mean, variance * tf.maximum(count - 1.0, 0.0) / count

    def _fusable(self, inputs):
        return (keras.backend.backend() == "tensorflow" and len(inputs.shape) == 4
                and self.axis in (-1, 3) and keras.backend.standardize_dtype(inputs.dtype) == "float32"
                and self.moving_mean.dtype == "float32")
