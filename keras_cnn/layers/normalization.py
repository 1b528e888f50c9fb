"""Normalisation layers that Keras does not ship."""

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
