"""Drop path: randomly skip a residual branch per sample (Huang et al. 2016; Larsson et al. 2017)."""

import keras

from keras_cnn import _validate


@keras.saving.register_keras_serializable(package="keras_cnn")
class DropPath(keras.layers.Layer):
    """Zero the input for a random subset of samples during training, scaling survivors by ``1/(1-rate)``.

    Applied to a residual branch before the addition, so a dropped sample passes through the identity
    only. At inference it is the identity (the scaling is done in training, as timm and keras.applications'
    EfficientNet "drop connect" do). ``rate=0`` makes it a no-op.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _validate.check_rate("rate", rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        shape = (keras.ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        mask = keras.ops.floor(keep + keras.random.uniform(shape, seed=self.seed_generator, dtype=inputs.dtype))
        return inputs * mask / keep

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
