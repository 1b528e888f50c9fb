"""Every private hook this package has into Keras, TensorFlow and tf2onnx, in one place.

Each function names the pinned version it was written against (setup.py: keras 3.15, tensorflow 2.21,
tf2onnx 1.17) and why no public API does the job. When a pin moves, this module is the list to check; the tests
named beside each function fail if a hook stops working. Callers import these functions, never the private
names themselves.
"""

import collections
import contextlib


# ---------------------------------------------------------------- Keras

def producer(tensor):
    """``(layer, input_tensors)``: the layer call that produced a symbolic Keras tensor, and its inputs.

    keras 3.15: ``KerasTensor._keras_history`` (operation, node index, tensor index) and the operation's
    ``_inbound_nodes``. Keras has no public graph walk from an output back through a functional model (only
    ``layer.input``, which is ambiguous for a layer called more than once). Used by ``keras_cnn.fcn.to_fcn``;
    tests/test_fcn.py."""
    found = node(tensor)
    return found.operation, found.input_tensors


def node(tensor):
    """The ``keras`` graph node (``.operation``, ``.input_tensors``) that produced a symbolic tensor; as
    :func:`producer` (keras 3.15 private attributes). Used by ``keras_cnn.features``; tests/test_features.py."""
    layer, node_index, _ = tensor._keras_history
    return layer._inbound_nodes[node_index]


@contextlib.contextmanager
def keras_tensorflow_conv(make):
    """Within the block, Keras's TensorFlow backend convolves with ``make(original_conv)``.

    keras 3.15: ``keras.src.backend.tensorflow.nn.conv`` is the function ``keras.ops.conv`` (so ``Conv2D``)
    calls, looked up at call time. No public option changes how Keras lowers a grouped convolution (an
    XLA-compiled function, because TensorFlow's CPU kernel has no groups). Used by ``keras_cnn._onnx_convert``;
    tests/test_export_all.py (grouped models to ONNX)."""
    from keras.src.backend.tensorflow import nn as backend_nn

    original = backend_nn.conv
    backend_nn.conv = make(original)
    try:
        yield
    finally:
        backend_nn.conv = original


# ---------------------------------------------------------------- TensorFlow and LiteRT

def set_per_channel(converter, per_channel):
    """Per-channel (True, TFLite's default) or per-tensor (False) weight quantization for a TFLiteConverter.

    tensorflow 2.21 (the same since 2.4): ``TFLiteConverter._experimental_disable_per_channel`` is the
    converter's only switch for it; no public attribute exists. tests/test_export.py
    (``test_int8_per_tensor_option_uses_one_scale_per_weight_and_is_smaller``)."""
    converter._experimental_disable_per_channel = not per_channel


def tflite_ops(interpreter):
    """The operators of a TFLite interpreter's model: dicts with ``op_name``, ``inputs``, ``outputs``.

    tensorflow 2.21 / ai-edge-litert (the interpreter it pins): ``Interpreter._get_ops_details``. The public
    ``get_tensor_details`` lists tensors only; the operators and which tensors they read and write are not public
    (``tf.lite.experimental.Analyzer`` prints them as text). tests/test_export.py, tests/test_int8.py."""
    return interpreter._get_ops_details()


def scalar_summary_metadata():
    """The summary metadata that makes TensorBoard show a ``tf.summary.write`` value as a scalar.

    tensorflow 2.21: ``tf.summary.scalar`` lives in the ``tensorboard`` package, which tensorflow-cpu does not
    install; ``tf.summary.write`` with the scalar plugin's metadata writes the same record with TensorFlow alone.
    The ``SummaryMetadata`` proto is public as ``tf.compat.v1.SummaryMetadata``, but its ``DATA_CLASS_SCALAR``
    value only in ``tensorflow.core.framework.summary_pb2``. tests/test_callbacks.py
    (``test_log_dir_writes_tensorboard_scalars``)."""
    from tensorflow.core.framework import summary_pb2

    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR)


def frozen(concrete_function):
    """``concrete_function`` with its variables inlined as constants (what the TFLite and ONNX converters see).

    tensorflow 2.21: ``tensorflow.python.framework.convert_to_constants.convert_variables_to_constants_v2``,
    which the converters call internally; TensorFlow 2 exports no public equivalent. Used by
    bench/bench_serving.py."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(concrete_function)


# ---------------------------------------------------------------- tf2onnx

def tf2onnx_max_opset():
    """The newest ONNX opset this tf2onnx writes (above it tf2onnx fails only after the whole conversion).

    tf2onnx 1.17: the keys of ``tf2onnx.constants.OPSET_TO_IR_VERSION``; tf2onnx has no public query for the
    opsets it supports. tests/test_reliability.py (the ``opset`` rows)."""
    import tf2onnx

    return max(tf2onnx.constants.OPSET_TO_IR_VERSION)


@contextlib.contextmanager
def tf2onnx_optimizers(wrap):
    """Within the block, tf2onnx builds each ONNX optimizer pass with ``wrap(factory)()``.

    tf2onnx 1.17: ``tf2onnx.optimizer._optimizers``, the ordered table ``optimize_graph`` reads on each call.
    ``optimize_graph`` takes no hook and ``from_function`` no optimizer list. tests/test_export.py
    (``test_onnx_conversion_collects_before_every_optimizer_pass_and_restores_gc``)."""
    from tf2onnx import optimizer

    original = optimizer._optimizers
    optimizer._optimizers = collections.OrderedDict((name, wrap(factory)) for name, factory in original.items())
    try:
        yield
    finally:
        optimizer._optimizers = original


def onednn_enabled():
    """Whether TensorFlow runs its oneDNN custom operations in this process.

    tensorflow 2.21: ``tensorflow.python.util._pywrap_util_port.IsMklEnabled``. TensorFlow turns oneDNN on by
    default only on CPUs with AVX-512-class features (``TF_ENABLE_ONEDNN_OPTS`` overrides it) and says so only in
    a start-up log line; no public API reports it. Used by bench/_common.py and .ci/run to name the setting."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())
