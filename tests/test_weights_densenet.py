"""Upstream checkpoints of DenseNet, ShuffleNet v2 and SqueezeNet (issue #17).

The torchvision/timm goldens run in tests/test_weights_upstream.py; here: keras.applications' DenseNets (their
reference logits computed in the test), the memory-efficient DenseNet on a torchvision checkpoint, the options
the checkpoints set, and the errors for a checkpoint of a sibling variant.
"""

import os

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn.layers import ConcatBNReLUConv
from keras_cnn.weights import checkpoint_info, get_upstream, synthetic, write_safetensors

GOLDENS = os.path.join(os.path.dirname(__file__), "goldens")


def golden_checkpoint(key, folder):
    """``(path, reference logits, size)``: the seeded checkpoint of golden ``key`` written as safetensors."""
    upstream = get_upstream(key)
    manifest, stats, reference, size = synthetic.read_golden(
        os.path.join(GOLDENS, upstream.source, f"{upstream.name}.npz"))
    path = write_safetensors(synthetic.checkpoint(manifest, stats=stats), os.path.join(folder, "weights.safetensors"))
    return path, reference, size


@pytest.mark.parametrize("application, name", [
    pytest.param("DenseNet121", "densenet121", id="DenseNet121"),
    pytest.param("DenseNet169", "densenet169", id="DenseNet169", marks=pytest.mark.slow),
    pytest.param("DenseNet201", "densenet201", id="DenseNet201", marks=pytest.mark.slow),
])
def test_keras_applications_densenet_computes_the_same_logits(application, name, tmp_path):
    """ZeroPadding(3) stem and ZeroPadding(1) pool are keras_cnn's symmetric stem; BN epsilon 1.001e-5."""
    path, reference = synthetic.keras_application_golden(getattr(keras.applications, application), 64,
                                                         str(tmp_path))
    actual = synthetic.keras_logits(name, path, 64, "keras.applications")
    assert synthetic.relative_error(actual, reference) <= 1e-4
    assert synthetic.input_dependence(reference) >= 0.05


def test_memory_efficient_densenet_loads_the_torchvision_checkpoint(tmp_path):
    """ConcatBNReLUConv layers hold the canonical weights of the plain BN and conv: same tensors, same logits."""
    path, reference, size = golden_checkpoint("torchvision:densenet121", str(tmp_path))
    model = keras_cnn.build("densenet121", weights=path, input_shape=(size, size, 3), classifier_activation=None,
                            memory_efficient=True)
    assert any(isinstance(layer, ConcatBNReLUConv) for layer in model.layers)
    actual = model.predict(synthetic.images(size=size, **synthetic.GOLDEN_IMAGES), verbose=0)
    assert synthetic.relative_error(actual, reference) <= 1e-4
    assert checkpoint_info(model)["source"] == "torchvision"


def test_keras_applications_checkpoint_sets_its_epsilon_and_rejects_another():
    upstream = get_upstream("keras.applications:DenseNet121")
    assert upstream.options == {"bn_epsilon": 1.001e-5}
    assert get_upstream("torchvision:densenet121").options == {}
    model = keras_cnn.build("densenet121", input_shape=(32, 32, 3), bn_epsilon=1.001e-5, memory_efficient=True)
    assert {layer.epsilon for layer in model.layers if isinstance(layer, ConcatBNReLUConv)} \
        == {1.001e-5}
    assert model.get_layer("final_bn").epsilon == 1.001e-5


@pytest.mark.parametrize("value, error, match", [
    (0.0, ValueError, "bn_epsilon must be > 0"),
    (-1e-5, ValueError, "bn_epsilon must be >= 0.0"),
    ("1e-5", TypeError, "bn_epsilon must be a number"),
])
def test_bn_epsilon_errors_name_the_argument(value, error, match):
    with pytest.raises(error, match=match):
        keras_cnn.build("densenet121", input_shape=(32, 32, 3), bn_epsilon=value)


def test_keras_checkpoint_conflicting_with_an_explicit_epsilon_names_both(tmp_path):
    tensors = {"conv1_conv/kernel": np.zeros((7, 7, 3, 64), np.float32),
               "conv5_block16_2_conv/kernel": np.zeros((3, 3, 128, 32), np.float32),
               "conv4_block24_2_conv/kernel": np.zeros((3, 3, 128, 32), np.float32)}
    path = str(tmp_path / "application.npz")
    np.savez(path, **tensors)
    with pytest.raises(ValueError, match=r"keras.applications:DenseNet121 weights need bn_epsilon=1.001e-05.*"
                                         r"received bn_epsilon=1e-05"):
        keras_cnn.build("densenet121", weights=path, weights_source="keras.applications", bn_epsilon=1e-5)


@pytest.mark.parametrize("key, model, match", [
    # the 1.0 checkpoint lacks 1.1's Fire positions: detection names what it is
    ("torchvision:squeezenet1_0", "squeezenet1_1", "matches no known checkpoint.*looks like torchvision:squeezenet1_0"),
    # the ShuffleNet v2 widths share every name: the shapes tell them apart, nothing is loaded
    ("torchvision:shufflenet_v2_x1_0", "shufflenet_v2_x0_5", "gives shape .* which has shape .*nothing was loaded"),
    # DenseNet-121 lacks DenseNet-169's deeper layers
    ("torchvision:densenet121", "densenet169", "matches no known checkpoint.*looks like .*torchvision:densenet121"),
])
def test_a_sibling_variant_checkpoint_is_refused(key, model, match, tmp_path):
    path, _, size = golden_checkpoint(key, str(tmp_path))
    with pytest.raises(ValueError, match=match):
        keras_cnn.build(model, weights=path, input_shape=(size, size, 3))
