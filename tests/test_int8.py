"""Full-integer (int8) TFLite export of the mobile family, run in LiteRT (issue 5).

Each model is built small (34x34, 10 classes, logits) and trained for two short epochs on scikit-learn's digits,
so that its logits separate the classes: a randomly initialised network's logits are dominated by per-class
offsets, and its top-1 decisions sit within int8 rounding noise of each other. Batch-norm statistics are then
set from the training images, and the model is converted with a representative dataset to TFLite with int8
builtin operators only; float32 enters and leaves through one QUANTIZE and one DEQUANTIZE. The quantized model
must agree with the float model on held-out digits.
"""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

import keras_cnn
from keras_cnn.layers.group_conv import transfer_group_conv_weights

SIZE, CLASSES = 34, 10  # at 34 SqueezeNet 1.1 pools 16/8/4-pixel maps, so its ceil-mode padding is exported
# name: (training epochs, build options). EfficientNet trains without drop path so that the training-mode pass
# that sets the BN statistics is deterministic; SqueezeNet (no batch norm) needs more epochs to leave chance level.
INT8_MODELS = {
    "mobilenet_v1": (2, {}),
    "mobilenet_v2": (2, {}),
    "mobilenet_v3_small": (2, {}),
    "shufflenet_v1_g3": (2, {}),
    "shufflenet_v2_x1_0": (2, {}),
    "squeezenet1_1": (3, {}),
    "efficientnet_b0": (2, {"drop_connect_rate": 0.0}),
}
# the exported copy of a trained model: ShuffleNet v1's group convolutions in split form (same weights)
EXPORT_OPTIONS = {"shufflenet_v1_g3": {"grouped_conv": "split"}}
BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")
# builtins that show the family's own layers were exported as intended (int8 like every other op)
EXPECTED_OPS = {
    "mobilenet_v3_small": {"HARD_SWISH", "MUL"},  # h-swish; SE gate relu6(x + 3) / 6 and rescaling
    "shufflenet_v1_g3": {"SPLIT", "RESHAPE", "TRANSPOSE", "AVERAGE_POOL_2D"},  # split group conv, shuffle
    "shufflenet_v2_x1_0": {"SPLIT", "RESHAPE", "TRANSPOSE"},
    "squeezenet1_1": {"MIRROR_PAD", "MAX_POOL_2D"},  # ceil-mode pooling
    "efficientnet_b0": {"LOGISTIC", "MUL"},  # swish and the SE gate
}


@functools.cache
def digits():
    """scikit-learn's 8x8 digits, bilinearly resized to SIZE, grey replicated to RGB, scaled to [-1, 1]; labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = tf.image.resize(data.images[..., None] / 8.0 - 1.0, (SIZE, SIZE)).numpy()
    return np.repeat(images, 3, axis=-1).astype("float32"), data.target


def train_briefly(model, images, labels, epochs):
    """A few epochs of Adam, then batch-norm statistics of the training images (short training leaves the moving
    averages far from them)."""
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, batch_size=64, epochs=epochs, verbose=0)
    estimate_batch_norm(model, images[:256])


def estimate_batch_norm(model, images):
    """Set every BN's moving mean/variance to the statistics of ``images`` (one training-mode pass, momentum 0)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(images, training=True)


def to_int8_tflite(model, calibration):
    """Full-integer post-training quantization: int8 builtins only, float32 input and output."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None]] for image in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def float_ops(interpreter):
    """``(op name, tensor name)`` for every float tensor an operator touches, except the input's QUANTIZE and
    the output's DEQUANTIZE."""
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    boundary = {d["index"] for d in interpreter.get_input_details() + interpreter.get_output_details()}
    found = []
    for op in interpreter._get_ops_details():
        for index in (*op["inputs"], *op["outputs"]):
            if index < 0 or tensors[index]["dtype"] != np.float32:
                continue
            if not (op["op_name"] in BOUNDARY_OPS and index in boundary):
                found.append((op["op_name"], tensors[index]["name"]))
    return found


def grouped_convs(interpreter):
    """CONV_2D operators whose filter depth differs from their input depth (grouped convolutions)."""
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    return [tensors[op["outputs"][0]]["name"] for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D"
            and tensors[op["inputs"][1]]["shape"][-1] != tensors[op["inputs"][0]]["shape"][-1]]


def run_tflite(interpreter, images):
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xdist_group(f"int8_{n}")) for n in INT8_MODELS])
def test_full_integer_tflite_agrees_with_float_model(name):
    keras.utils.set_random_seed(0)
    images, labels = digits()
    train, held_out, held_out_labels = images[:1024], images[1024:1280], labels[1024:1280]
    epochs, options = INT8_MODELS[name]
    model = keras_cnn.build(name, input_shape=(SIZE, SIZE, 3), classes=CLASSES, classifier_activation=None,
                            **options)
    train_briefly(model, train, labels[:1024], epochs)
    expected = model(held_out, training=False).numpy()
    assert np.mean(expected.argmax(1) == held_out_labels) > 0.3  # the float model separates the digits
    if name in EXPORT_OPTIONS:
        export = keras_cnn.build(name, input_shape=(SIZE, SIZE, 3), classes=CLASSES, classifier_activation=None,
                                 **options, **EXPORT_OPTIONS[name])
        transfer_group_conv_weights(model, export)
        model = export

    interpreter = Interpreter(model_content=to_int8_tflite(model, train[:64]),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    op_names = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not {n for n in op_names if "FLEX" in n.upper() or n == "CUSTOM"}, op_names
    assert EXPECTED_OPS.get(name, set()) <= op_names, op_names
    assert float_ops(interpreter) == []
    assert grouped_convs(interpreter) == []
    assert interpreter.get_input_details()[0]["dtype"] == np.float32

    logits = run_tflite(interpreter, held_out)
    assert np.mean(logits.argmax(1) == expected.argmax(1)) >= 0.8
    error = np.abs(logits - expected) / (expected.max() - expected.min())
    assert error.mean() < 0.05 and error.max() < 0.4, (error.mean(), error.max())
