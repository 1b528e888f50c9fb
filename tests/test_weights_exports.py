"""A converted checkpoint keeps the upstream function through ``keras.saving.load_model`` and every export format
(SavedModel, TFLite in LiteRT, ONNX in onnxruntime): the issue's acceptance, on torchvision's SqueezeNet 1.1 (its
golden, tests/goldens/torchvision/squeezenet1_1.npz: logits of torchvision with the same weights)."""

import os

import keras
import numpy as np
import onnxruntime
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_cnn
from keras_cnn import export
from keras_cnn.weights import get_upstream, synthetic
from keras_cnn.weights._readers import write_safetensors

GOLDEN = os.path.join(os.path.dirname(__file__), "goldens", "torchvision", "squeezenet1_1.npz")
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    upstream = get_upstream("torchvision:squeezenet1_1")
    manifest, stats, reference, size = synthetic.read_golden(GOLDEN)
    folder = tmp_path_factory.mktemp("squeezenet")
    path = write_safetensors(synthetic.checkpoint(manifest, stats=stats), str(folder / "squeezenet1_1.safetensors"))
    model = keras_cnn.build("squeezenet1_1", weights=path, input_shape=(size, size, 3), classifier_activation=None)
    images = synthetic.images(size=size, **synthetic.GOLDEN_IMAGES)
    return model, images, reference, folder, upstream


def check(actual, reference):
    assert synthetic.relative_error(np.asarray(actual), reference) <= TOLERANCE


def test_keras_file_round_trip(converted):
    model, images, reference, folder, upstream = converted
    path = str(folder / "squeezenet1_1.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    check(loaded.predict(images, verbose=0), reference)
    info = keras_cnn.weights.checkpoint_info(loaded)
    assert info["upstream"] == "squeezenet1_1" and info["preprocessing"]["mean"] == list(upstream.preprocessing["mean"])


def test_saved_model_tflite_and_onnx(converted):
    model, images, reference, folder, _ = converted
    saved = export.to_saved_model(model, folder / "saved", verify_data=images)
    serve = tf.saved_model.load(saved.path).signatures["serving_default"]
    check(list(serve(image=tf.constant(images)).values())[0].numpy(), reference)
    tflite = export.to_tflite(model, folder / "squeezenet1_1.tflite", verify_data=images)
    runner = Interpreter(model_path=tflite.path).get_signature_runner("serving_default")
    check(np.concatenate([list(runner(image=images[i:i + 1]).values())[0] for i in range(len(images))]), reference)
    onnx = export.to_onnx(model, folder / "squeezenet1_1.onnx", verify_data=images)
    session = onnxruntime.InferenceSession(onnx.path, providers=["CPUExecutionProvider"])
    check(session.run(None, {"image": images})[0], reference)
