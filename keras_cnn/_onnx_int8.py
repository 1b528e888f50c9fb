"""Static int8 quantization of an ONNX model with onnxruntime, in QDQ form: the server-side int8 path.

QDQ (QuantizeLinear/DequantizeLinear pairs around each quantized operator) is onnxruntime's recommended format
for CPUs: its graph optimiser fuses the pairs into integer kernels (``QLinearConv``, ``QGemm``) where it has them
and leaves the rest in float, so every model converts. Weights are int8, one scale per output channel by default;
activations int8 with ranges from min/max calibration on representative images (onnxruntime's "S8S8"
recommendation for x86). The final softmax stays float: 8-bit probabilities would tie near-equal classes.
"""

import os
import tempfile

import numpy as np

CALIBRATION_BATCH = 16
FLOAT_OPS = ("Softmax",)  # left unquantized (see the module docstring)


def quantize(model_bytes, samples, per_channel=True):
    """``model_bytes`` (a float ONNX model) quantized to int8 QDQ, calibrated on ``samples`` (an iterable of
    ``(1, H, W, C)`` float32 images in the model's input range); returns the bytes."""
    import onnx
    from onnxruntime import quantization as ortq

    images = np.concatenate(list(samples)).astype("float32")
    if not len(images):
        raise ValueError("representative_data holds no images to calibrate the int8 ranges on.")
    with tempfile.TemporaryDirectory() as staging:
        float_path, prepared, output = (os.path.join(staging, n) for n in ("float.onnx", "pre.onnx", "int8.onnx"))
        with open(float_path, "wb") as handle:
            handle.write(model_bytes)
        # shape inference and graph optimisation first, as onnxruntime's quantization guide asks
        ortq.quant_pre_process(float_path, prepared, skip_symbolic_shape=True)
        graph = onnx.load(prepared).graph
        excluded = [node.name for node in graph.node if node.op_type in FLOAT_OPS]
        ortq.quantize_static(prepared, output, _reader(ortq, graph.input[0].name, images),
                             quant_format=ortq.QuantFormat.QDQ, per_channel=per_channel,
                             activation_type=ortq.QuantType.QInt8, weight_type=ortq.QuantType.QInt8,
                             calibrate_method=ortq.CalibrationMethod.MinMax, nodes_to_exclude=excluded)
        with open(output, "rb") as handle:
            return handle.read()


def _reader(ortq, input_name, images):
    """An onnxruntime calibration data reader over ``images`` in batches."""

    class Reader(ortq.CalibrationDataReader):
        def __init__(self):
            self._batches = iter([{input_name: images[i:i + CALIBRATION_BATCH]}
                                  for i in range(0, len(images), CALIBRATION_BATCH)])

        def get_next(self):
            return next(self._batches, None)

    return Reader()
