"""tf2onnx conversion of a traced serving function, with two adjustments for this package's models.

Both are scoped to one conversion and undone afterwards; onnxruntime then checks the result against Keras
(``keras_cnn.export.to_onnx``), so neither can pass a wrong graph unnoticed.
"""

import contextlib
import gc

import keras
import tensorflow as tf

from keras_cnn import _compat


def convert(function, signature, opset):
    """Return the ONNX ``ModelProto`` of ``function`` traced at ``signature``."""
    import tf2onnx

    with _grouped_conv_as_one_node(), _collect_between_optimizers():
        proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset)
    return proto


def _grouped_conv_as_one_node():
    """Trace each grouped convolution as one ``Conv2D`` node, which tf2onnx maps to ONNX ``Conv(group=g)``.

    Keras's TensorFlow backend wraps a grouped convolution in an XLA-compiled function because TensorFlow's CPU
    kernel has no groups; tf2onnx cannot inline such a function and leaves a ``StatefulPartitionedCall`` node
    that onnxruntime rejects (ResNeXt, ShuffleNet v1). The traced graph is only converted, never run by
    TensorFlow.
    """

    def make(original):
        def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
            if (data_format or keras.config.image_data_format()) != "channels_last" or len(inputs.shape) != 4 \
                    or inputs.shape[-1] == kernel.shape[-2]:
                return original(inputs, kernel, strides, padding, data_format, dilation_rate)
            return tf.nn.convolution(inputs, kernel, strides, padding.upper(), data_format="NHWC",
                                     dilations=dilation_rate)
        return conv

    return _compat.keras_tensorflow_conv(make)


@contextlib.contextmanager
def _collect_between_optimizers():
    """Free each discarded graph copy before tf2onnx's next ONNX optimizer pass.

    tf2onnx deep-copies the whole graph, constants included, before each of its ~12 optimizers in every
    iteration, and the discarded copies hold reference cycles, so only the cyclic collector frees them, and it
    runs too rarely, so a conversion's peak grew to tens of times the model's weights (figures in
    docs/benchmarks.md, "Memory of the ONNX conversion"). Objects alive before the conversion are
    frozen (``gc.freeze``) so that each collection scans only the converter's own objects.
    """
    froze = gc.get_freeze_count() == 0  # a caller's own freeze (e.g. before fork) is left alone
    if froze:
        gc.freeze()
    try:
        with _compat.tf2onnx_optimizers(_collecting):
            yield
    finally:
        if froze:
            gc.unfreeze()


def _collecting(factory):
    def make():
        gc.collect()
        return factory()
    return make
