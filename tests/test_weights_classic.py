"""Checkpoints of the classic family and Xception: keras.applications' VGG16/VGG19 and Xception computed here
(seeded weights, calibrated BN), the options timm's Xception needs, and the rules' corner cases. The torchvision
VGGs and AlexNet and timm's legacy_xception are checked against their goldens in test_weights_upstream.py."""

import os

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import _weights
from keras_cnn.layers import PaddedMaxPooling2D
from keras_cnn.weights import get_upstream, read_checkpoint, synthetic, write_safetensors
from keras_cnn.weights._convert import convert

TOLERANCE = 1e-4
MIN_INPUT_DEPENDENCE = 0.05
VGG_SIZE = 32  # keras.applications' VGG flattens any map: at 32x32 fc1 reads one 1x1x512 cell
XCEPTION_SIZE = 71  # keras.applications' smallest Xception input


def check_keras_application(application, name, size, folder, **options):
    """keras.applications ``application`` with seeded weights against keras_cnn ``name`` converted from its file."""
    caffe = name.startswith("vgg")  # BGR inputs: the converter reversed the first convolution's input channels
    path, reference = synthetic.keras_application_golden(application, size, folder, **options)
    actual = synthetic.keras_logits(name, path, size, "keras.applications", bgr_reference=caffe, **options)
    assert actual.shape == reference.shape
    assert synthetic.input_dependence(reference) >= MIN_INPUT_DEPENDENCE
    assert synthetic.relative_error(actual, reference) <= TOLERANCE


@pytest.mark.parametrize("application, name", [
    pytest.param(keras.applications.VGG16, "vgg16", id="VGG16"),
    pytest.param(keras.applications.VGG19, "vgg19", id="VGG19", marks=pytest.mark.slow)])
def test_keras_applications_vgg(application, name, tmp_path):
    check_keras_application(application, name, VGG_SIZE, str(tmp_path))


def test_keras_applications_vgg16_notop_file_loads_the_trunk(tmp_path):
    """The ``_notop`` file has no fc1/fc2/predictions: it is recognised and loads into ``include_top=False``."""
    check_keras_application(keras.applications.VGG16, "vgg16", VGG_SIZE, str(tmp_path), include_top=False)


@pytest.mark.xdist_group("xception")
def test_keras_applications_xception(tmp_path):
    """keras_cnn's defaults are the Keras model: "same" padding, BN epsilon 1e-3, no bias in the separable
    convolutions; the file's automatically named shortcut layers are recognised by their widths."""
    check_keras_application(keras.applications.Xception, "xception", XCEPTION_SIZE, str(tmp_path))


def test_xception_shortcut_names_do_not_depend_on_the_saving_session():
    """conv2d_<n> is numbered by whatever Keras had built before the file was saved (conv2d_1.. in the released
    files, conv2d_17.. in a busy session): the rule reads widths, not numbers."""
    upstream = get_upstream("keras.applications:Xception")
    for first in (1, 17):
        tensors = {"block1_conv1/kernel": np.zeros((3, 3, 3, 32))}
        for offset, width in enumerate((128, 256, 728, 1024)):
            tensors[f"conv2d_{first + offset}/kernel"] = np.zeros((1, 1, 8, width))
            tensors[f"batch_normalization_{first + offset}/gamma"] = np.zeros(width)
        blocks = ("block2", "block3", "block4", "block13")
        assert sorted(upstream.renamed(tensors)) == sorted(
            ["block1_conv1/kernel"] + [f"{block}_shortcut/kernel" for block in blocks]
            + [f"{block}_shortcut_bn/gamma" for block in blocks])


def test_timm_xception_needs_both_of_its_options():
    upstream = get_upstream("timm:legacy_xception")
    assert upstream.options == {"padding": "symmetric", "bn_epsilon": 1e-5}
    size = upstream.golden_input
    model = keras_cnn.build("xception", include_top=False, input_shape=(size, size, 3), **upstream.options)
    # the golden's input pools three even maps, where PyTorch's and TensorFlow's windows differ, and one odd map
    assert [layer.input.shape[1] for layer in model.layers if layer.name.endswith("_pool")] == [40, 20, 10, 5]
    assert {layer.epsilon for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)} == {1e-5}
    assert sum(isinstance(layer, PaddedMaxPooling2D) for layer in model.layers) == 4


@pytest.mark.slow
@pytest.mark.parametrize("options", [{"padding": "same", "bn_epsilon": 1e-5},
                                     {"padding": "symmetric", "bn_epsilon": 1e-3}], ids=["same", "epsilon_1e-3"])
def test_timm_xception_golden_tells_each_option_apart(options, tmp_path):
    """The golden input exercises both options: the timm weights in a model built without either miss the
    upstream function (the converter itself refuses such a build; here the weights are assigned directly)."""
    upstream = get_upstream("timm:legacy_xception")
    golden = os.path.join(os.path.dirname(__file__), "goldens", "timm", f"{upstream.name}.npz")
    manifest, stats, reference, size = synthetic.read_golden(golden)
    path = write_safetensors(synthetic.checkpoint(manifest, stats=stats), str(tmp_path / "x.safetensors"))
    model = keras_cnn.build("xception", input_shape=(size, size, 3), classifier_activation=None, **options)
    weights, _ = convert(upstream, read_checkpoint(path), model, classes=1000, include_top=True)
    _weights.assign(model, weights)
    actual = model.predict(synthetic.images(size=size, **synthetic.GOLDEN_IMAGES), verbose=0)
    assert synthetic.relative_error(actual, reference) > 10 * TOLERANCE


def torch_max_pool(x, size, stride, padding):
    """PyTorch's MaxPool2d on NHWC arrays: padded cells are -inf."""
    padded = np.pad(x, [(0, 0), (padding, padding), (padding, padding), (0, 0)], constant_values=-np.inf)
    out = (padded.shape[1] - size) // stride + 1
    return np.stack([np.stack([padded[:, i * stride:i * stride + size, j * stride:j * stride + size].max(axis=(1, 2))
                               for j in range(out)], axis=1) for i in range(out)], axis=1)


@pytest.mark.parametrize("size", [6, 7])
def test_padded_max_pooling_is_pytorch_max_pool_on_negative_maps(size):
    x = -np.random.default_rng(size).uniform(1.0, 2.0, (2, size, size, 3)).astype("float32")
    layer = PaddedMaxPooling2D(3, strides=2, padding=1)
    np.testing.assert_array_equal(layer(x), torch_max_pool(x, 3, 2, 1))
    assert layer.compute_output_shape((None, size, size, 3)) == (None, (size - 1) // 2 + 1, (size - 1) // 2 + 1, 3)
    assert PaddedMaxPooling2D.from_config(layer.get_config()).padding == 1
    with pytest.raises(ValueError, match=r"padding must be at most pool_size // 2 = 1 .*received padding=2"):
        PaddedMaxPooling2D(3, strides=2, padding=2)


def test_xception_option_errors():
    with pytest.raises(ValueError, match="padding must be one of 'same', 'symmetric'; received 'valid'"):
        keras_cnn.build("xception", padding="valid")
    with pytest.raises(ValueError, match="bn_epsilon must be >= 1e-12; received 0"):
        keras_cnn.build("xception", bn_epsilon=0)


def test_torchvision_alexnet_is_the_one_gpu_row(tmp_path):
    """torchvision's alexnet converts into keras_cnn's alexnet_owt (its golden: test_weights_upstream.py), built
    without the two-GPU groups; the paper's alexnet has no checkpoint, and a torchvision file given to it names the
    model it fits."""
    upstream = get_upstream("torchvision:alexnet")
    assert upstream.model == "alexnet_owt" and not keras_cnn.weights.upstreams(model="alexnet")
    path = write_safetensors({name: np.zeros(1, "float32") for name in upstream.signature},
                             str(tmp_path / "alexnet.safetensors"))
    with pytest.raises(ValueError, match="torchvision:alexnet weights need groups=1 for 'alexnet_owt'; received "
                                         "groups=2"):
        keras_cnn.build("alexnet_owt", weights=path, groups=2)
    with pytest.raises(ValueError, match=r"It looks like torchvision:alexnet \(keras_cnn 'alexnet_owt'\)"):
        keras_cnn.build("alexnet", weights=path)
