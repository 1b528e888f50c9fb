"""Full-integer TFLite for the mobile family on real images: the bundled digits, after a short training.

Top-1 agreement with the float Keras model on at least 98% of the 360 held-out digits, with per-channel and
with per-tensor weights; the float model must have learned the digits first (>= 0.7; chance is 0.1), or the
agreement would be vacuous. ShuffleNet v1 is trained as built by default (grouped convolutions, pooled
shortcuts); ``to_tflite`` converts its int8 form (split groups, shortcut pooling as a depthwise convolution:
with a pooling operator the residual sums saturate and agreement is 0.94-0.95, docs/benchmarks.md). File size
at 1000 classes: the issue asks for at most 0.27x the float32 file. With
per-channel weights TFLite stores a float32 scale and an int64 zero point for every output channel of each
kernel and of its int32 bias, so these small models measure 0.268-0.307 (held to measured + 0.01 so that a
regression shows); ``per_channel=False`` meets 0.27.
"""

import functools
import os

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import _tflite, data, export, recalibrate_batch_norm
from tests.conftest import small_size

MOBILE = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "shufflenet_v1_g3", "shufflenet_v2_x1_0",
          "squeezenet1_1", "efficientnet_b0"]
CI_MODELS = {"squeezenet1_1"}  # the rest carry the slow mark (make test-all)
# (peak Adam learning rate, epochs), cosine decay: SqueezeNet has no batch norm, and at 2e-3 its ReLUs die and
# it stays at chance. A barely trained model has many near-tied top-1 decisions that int8 rounding flips:
# ShuffleNet v1 reaches 0.94 test accuracy in 10 epochs (agreement 0.975) and 0.97 in 20 (agreement 0.99).
RECIPE = {"squeezenet1_1": (5e-4, 15), "shufflenet_v1_g3": (2e-3, 20)}
DEFAULT_RECIPE = (2e-3, 10)


@functools.lru_cache(maxsize=8)  # the TFLite and ONNX tests of a model share an xdist group: one training
def trained(name):
    size = small_size(name)
    splits = data.digits(image_size=(size, size), channels=3)
    keras.utils.set_random_seed(0)
    model = keras_cnn.build(name, input_shape=(size, size, 3), classes=10)
    learning_rate, epochs = RECIPE.get(name, DEFAULT_RECIPE)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, epochs * -(-len(splits["train"][0]) // 32))
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy")
    model.fit(*splits["train"], epochs=epochs, batch_size=32, verbose=0)
    # short training leaves the moving averages far off
    recalibrate_batch_norm(model, splits["train"][0][:256], batch_size=256)
    return model, splits


def mobile_params():
    return [pytest.param(n, id=n, marks=[pytest.mark.xdist_group(f"int8-{n}")]
                         + ([] if n in CI_MODELS else [pytest.mark.slow])) for n in MOBILE]


@pytest.mark.parametrize("name", mobile_params())
def test_int8_agrees_with_float_on_held_out_digits(name, tmp_path):
    model, splits = trained(name)
    x_test = splits["test"][0]
    reference = model.predict(x_test, verbose=0).argmax(1)
    # a model stuck on one class would agree with anything: it must have learned the digits first
    assert np.mean(reference == splits["test"][1]) >= 0.7, f"{name}: float model did not learn (chance: 0.1)"
    float_file = export.to_tflite(model, tmp_path / "f32.tflite")
    for per_channel in (True, False):
        int8 = export.to_tflite(model, tmp_path / f"int8_{per_channel}.tflite", quantization="int8",
                                representative_data=splits["train"][0], io_dtype="int8", per_channel=per_channel)
        interpreter, _ = _tflite.interpreter(int8.path, delegates=False)
        agreement = np.mean(_tflite.predict(interpreter, x_test).argmax(1) == reference)
        assert agreement >= 0.98, f"{name} (per_channel={per_channel}): int8 top-1 agreement {agreement:.3f}"
        assert os.path.getsize(int8.path) == int8.size_bytes < float_file.size_bytes


@pytest.mark.parametrize("name", mobile_params())
def test_onnx_int8_agrees_with_float_on_held_out_digits(name, tmp_path):
    """onnxruntime's static int8 (QDQ, keras_cnn._onnx_int8), the server-side int8 path: the same 98% rule."""
    import onnx
    import onnxruntime

    model, splits = trained(name)
    x_test = splits["test"][0]
    reference = model.predict(x_test, verbose=0).argmax(1)
    float_file = export.to_onnx(model, tmp_path / "f32.onnx")
    int8 = export.to_onnx(model, tmp_path / "int8.onnx", quantization="int8", representative_data=splits["train"][0],
                          verify_data=x_test)
    session = onnxruntime.InferenceSession(int8.path, providers=["CPUExecutionProvider"])
    agreement = np.mean(session.run(None, {"image": x_test})[0].argmax(1) == reference)
    assert agreement >= 0.98, f"{name}: onnxruntime int8 top-1 agreement {agreement:.3f}"
    graph = onnx.load(int8.path).graph
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]
    convolutions = [n for n in graph.node if n.op_type == "Conv"]
    assert len(int8_weights) == len(convolutions) > 0  # every convolution's kernel stored as int8
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.node}
    assert int8.size_bytes < 0.4 * float_file.size_bytes


# int8 / float32 file size at 1000 classes, measured 2026-11-22 (TF 2.21 converter)
SIZE_RATIO = {"mobilenet_v1": 0.268, "mobilenet_v2": 0.283, "mobilenet_v3_small": 0.268, "shufflenet_v1_g3": 0.307,
              "shufflenet_v2_x1_0": 0.278, "squeezenet1_1": 0.273, "efficientnet_b0": 0.289}


@pytest.mark.parametrize("name", mobile_params())
def test_int8_file_size_at_1000_classes(name, tmp_path):
    model = keras_cnn.build(name, input_shape=(32, 32, 3))
    calibration = np.random.default_rng(0).uniform(size=(8, 32, 32, 3)).astype("float32")
    float_file = export.to_tflite(model, tmp_path / "f32.tflite")
    int8 = export.to_tflite(model, tmp_path / "int8.tflite", quantization="int8", representative_data=calibration)
    assert int8.size_bytes / float_file.size_bytes <= SIZE_RATIO[name] + 0.01
    per_tensor = export.to_tflite(model, tmp_path / "int8_pt.tflite", quantization="int8", per_channel=False,
                                  representative_data=calibration)
    assert per_tensor.size_bytes / float_file.size_bytes <= 0.27
