"""Layers of residual networks: the zero-padded identity shortcut and stochastic depth (seed 003 §5.4, §6.3)."""

import keras

from keras_cnn import _validate


@keras.saving.register_keras_serializable(package="keras_cnn")
class ZeroPadChannels(keras.layers.Layer):
    """Append ``padding`` all-zero channels (channels last).

    The parameter-free shortcut of ResNet option "A" (He et al. 2016, §3.3): the identity is widened with zero
    channels, appended after the existing ones as in fb.resnet.torch's ``Concat(Identity, MulConstant(0))``.
    """

    def __init__(self, padding, **kwargs):
        super().__init__(**kwargs)
        self.padding = _validate.check_int("padding", padding, minimum=0)

    def call(self, inputs):
        pad = [[0, 0]] * (len(inputs.shape) - 1) + [[0, self.padding]]
        return keras.ops.pad(inputs, pad)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return (*input_shape[:-1], None if channels is None else channels + self.padding)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="keras_cnn")
class StochasticDepth(keras.layers.Wrapper):
    """Residual addition whose branch is dropped for the whole mini-batch (Huang et al., "Deep Networks with
    Stochastic Depth", ECCV 2016).

    Called on ``[shortcut, inputs]``. In training it returns ``shortcut + b * layer(inputs)`` with one
    ``b ~ Bernoulli(survival_probability)`` per call; when ``b = 0`` the wrapped layer (the residual branch,
    usually a small functional model) is not run at all: the choice is a ``keras.ops.cond``, and inside a
    ``tf.function`` TensorFlow executes only the taken branch, in the forward and the backward pass, so a
    dropped block costs nothing and its batch-norm statistics are not updated. At inference it returns the
    expectation ``shortcut + survival_probability * layer(inputs)`` (seed 003 §6.3, item 6).
    """

    def __init__(self, layer, survival_probability=1.0, seed=None, **kwargs):
        super().__init__(layer, **kwargs)
        self.survival_probability = _validate.check_float(
            "survival_probability", survival_probability, minimum=0.0, maximum=1.0)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape[1])
        self.built = True

    def call(self, inputs, training=None):
        shortcut, x = inputs
        if not training:
            return shortcut + self.survival_probability * self.layer(x, training=False)
        if self.survival_probability == 1.0:
            return shortcut + self.layer(x, training=True)
        keep = keras.random.uniform((), seed=self.seed_generator) < self.survival_probability
        return keras.ops.cond(keep, lambda: shortcut + self.layer(x, training=True), lambda: shortcut)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "survival_probability": self.survival_probability, "seed": self.seed}
