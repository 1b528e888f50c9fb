"""A convolution computed as window slices times the kernel matrix, for the former fully connected layers."""

import keras


@keras.saving.register_keras_serializable(package="keras_cnn")
class WindowConv2D(keras.layers.Conv2D):
    """``Conv2D`` (valid padding, stride 1) computed as its k×k input windows stacked on the channel axis, times
    the kernel reshaped to a ``(k·k·C, filters)`` matrix: the same weights, config and result.

    :func:`keras_cnn.to_fcn` uses it for the Dense layer that follows ``Flatten``: its large kernel (VGG's fc6,
    7×7×512→4096) applied to a few positions is one matrix product, which TensorFlow's CPU convolution computes
    several times slower (bench/bench_fcn.py; docs/benchmarks.md). Windows are sliced, not convolved with an
    identity kernel as ``keras.ops.image.extract_patches`` does, so any backend runs it.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        if self.padding != "valid" or tuple(self.strides) != (1, 1) or tuple(self.dilation_rate) != (1, 1) \
                or self.groups != 1 or self.data_format != "channels_last":
            raise ValueError("WindowConv2D supports padding='valid', strides=1, dilation_rate=1, groups=1 and "
                             f"channels_last only; received padding={self.padding!r}, strides={self.strides}, "
                             f"dilation_rate={self.dilation_rate}, groups={self.groups}, "
                             f"data_format={self.data_format!r}.")

    def call(self, inputs):
        rows, cols = self.kernel_size
        height, width = keras.ops.shape(inputs)[1] - rows + 1, keras.ops.shape(inputs)[2] - cols + 1
        # (i, j, channel) order on the last axis: the row order of the kernel reshaped below
        windows = keras.ops.concatenate([inputs[:, i:i + height, j:j + width, :]
                                         for i in range(rows) for j in range(cols)], axis=-1)
        outputs = keras.ops.matmul(windows, keras.ops.reshape(self.kernel, (-1, self.filters)))
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs
