"""Running a ``.tflite`` file: the interpreter, its serving signature, and int8/uint8 (de)quantisation.

Export verification (``keras_cnn.export``), the apps' runner (``keras_cnn.app.runners``) and the benchmarks all
go through these functions, so every path feeds a file the same integers for the same images.
"""

import os

import numpy as np

SIGNATURE, INPUT = "serving_default", "image"  # what keras_cnn.export writes
OUTPUTS = ("probabilities", "logits")  # its one output, named by what it is (keras_cnn.export.output_name)


def interpreter(model, *, num_threads=None, delegates=True):
    """``(interpreter, runtime name)`` for a ``.tflite`` path or its bytes, with its tensors allocated.

    LiteRT (``ai_edge_litert``) when installed, else TensorFlow's copy of the interpreter, which runs the same
    files. ``delegates=False`` uses the built-in kernels only, so the operators are the ones the file holds (the
    default XNNPACK delegate would replace most of them with one DELEGATE node).
    """
    source = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) \
        else {"model_path": os.fspath(model)}
    try:
        from ai_edge_litert import interpreter as litert

        make, resolvers, runtime = litert.Interpreter, litert.OpResolverType, "ai_edge_litert"
    except ImportError:
        import tensorflow as tf

        make, resolvers = tf.lite.Interpreter, tf.lite.experimental.OpResolverType
        runtime = "tf.lite.Interpreter"
    options = {} if delegates else {"experimental_op_resolver_type": resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    result = make(**source, num_threads=num_threads, **options)
    result.allocate_tensors()
    return result, runtime


def output_name(interpreter):
    """The name of the serving signature's one output: "probabilities" or "logits" for keras_cnn's files."""
    names = list(interpreter.get_signature_runner(SIGNATURE).get_output_details())
    if len(names) != 1:
        raise ValueError(f"a .tflite file's {SIGNATURE!r} signature must have one output (one of "
                         f"{', '.join(OUTPUTS)}); this one has {names}.")
    return names[0]


def io_details(interpreter):
    """The tensor details (dtype, shape_signature, quantization, index) of the serving signature's ``image``
    input and its one output (:func:`output_name`)."""
    runner = interpreter.get_signature_runner(SIGNATURE)
    return runner.get_input_details()[INPUT], runner.get_output_details()[output_name(interpreter)]


def predict(interpreter, images, batch_size=1):
    """float32 outputs ``(N, classes)`` (probabilities or logits: :func:`output_name`) for float32 ``images``
    ``(N, H, W, C)``, ``batch_size`` images per invocation (the signature resizes the input to each batch). An
    integer input or output is quantized or dequantized with the scale and zero point the file records
    (:func:`quantize`, :func:`dequantize`)."""
    runner, output = interpreter.get_signature_runner(SIGNATURE), output_name(interpreter)
    given, wanted = io_details(interpreter)
    return np.concatenate([dequantize(runner(**{INPUT: quantize(images[i:i + batch_size], given)})[output], wanted)
                           for i in range(0, len(images), batch_size)])


def quantize(x, details):
    """Float values as the tensor ``details`` describe them: unchanged but for the dtype for a float tensor;
    for an integer one TFLite's own rule (``AffineQuantize`` in tensorflow/lite/kernels/internal/reference/
    quantize.h): ``clamp(round(x / scale) + zero_point)`` in float32, rounding halves away from zero
    (``TfLiteRound``, i.e. ``std::round``; NumPy's ``round`` would round them to even), clamped to the dtype."""
    dtype = np.dtype(details["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return np.asarray(x).astype(dtype, copy=False)
    scale, zero_point = details["quantization"]
    scaled = np.asarray(x, np.float32) / np.float32(scale)
    whole = np.trunc(scaled)
    rounded = np.where(np.abs(scaled - whole) == 0.5, whole + np.sign(scaled), np.rint(scaled))
    info = np.iinfo(dtype)
    return np.clip(rounded + zero_point, info.min, info.max).astype(dtype)


def dequantize(y, details):
    """A tensor's values as float32: ``(y - zero_point) * scale`` for an integer tensor."""
    y = np.asarray(y)
    if not np.issubdtype(np.dtype(details["dtype"]), np.integer):
        return y.astype("float32", copy=False)
    scale, zero_point = details["quantization"]
    return ((y.astype("float32") - zero_point) * np.float32(scale)).astype("float32")


def pin_input_quantization(flatbuffer, scale, zero_point):
    """``flatbuffer`` with its uint8 input recorded as ``scale`` and ``zero_point``, or unchanged (None) when
    the input is not uint8 or feeds anything but QUANTIZE.

    The converter gives a uint8 input the scale its calibration images spanned (inputs in [0, 0.9]: 0.9/255, so
    bytes above 229 clip). The input's only consumer, a QUANTIZE into the int8 graph, requantizes from whatever
    the input records (TFLite's quantize kernel, uint8 to int8), so pinning the input's scale and zero point to
    what the bytes mean (1/255 and 0 for a model whose range is [0, 1]) leaves the int8 graph as calibrated.
    The two values are overwritten in place (same length), so the flatbuffer stays valid."""
    import struct

    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        from tensorflow.lite.python import schema_py_generated as schema
    buffer = bytearray(flatbuffer)
    model = schema.Model.GetRootAs(buffer, 0)
    subgraph = model.Subgraphs(0)
    index = subgraph.Inputs(0)
    tensor = subgraph.Tensors(index)
    quantization = tensor.Quantization()
    consumers = [model.OperatorCodes(subgraph.Operators(i).OpcodeIndex())
                 for i in range(subgraph.OperatorsLength()) if index in subgraph.Operators(i).InputsAsNumpy()]
    quantize = schema.BuiltinOperator.QUANTIZE
    if (tensor.Type() != schema.TensorType.UINT8 or quantization is None or quantization.ScaleLength() != 1
            or quantization.ZeroPointLength() != 1
            or not consumers or any(max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) != quantize for c in consumers)):
        return None
    table = quantization._tab  # QuantizationParameters: min 4, max 6, scale 8, zero_point 10 (schema.fbs)
    struct.pack_into("<f", buffer, table.Vector(table.Offset(8)), scale)
    struct.pack_into("<q", buffer, table.Vector(table.Offset(10)), zero_point)
    return bytes(buffer)
