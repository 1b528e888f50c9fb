"""Upstream checkpoints of the residual family (issue #17): keras_cnn/weights/families/resnet.py.

The torchvision/timm goldens run in tests/test_weights_upstream.py; here: keras.applications' ResNet*/ResNet*V2
(reference logits computed in the test), the trunk-only and new-head loads, and the errors for a checkpoint of
another ResNet.
"""

import contextlib
import logging
import os

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import _weights
from keras_cnn.weights import checkpoint_info, load_checkpoint, synthetic, write_safetensors
from keras_cnn.weights._convert import detect
from keras_cnn.weights._readers import read_checkpoint

GOLDENS = os.path.join(os.path.dirname(__file__), "goldens")
TOLERANCE = 1e-4
MIN_INPUT_DEPENDENCE = 0.05
SIZE = 64  # every stage runs (final map 2x2) and a 50-layer model converts in seconds


def check_logits(actual, reference):
    assert synthetic.input_dependence(reference) >= MIN_INPUT_DEPENDENCE
    assert synthetic.relative_error(actual, reference) <= TOLERANCE


def torch_file(folder, golden, name=None):
    """A torchvision-form ``.safetensors`` checkpoint from a golden's manifest and calibrated statistics."""
    manifest, stats, _, _ = synthetic.read_golden(os.path.join(GOLDENS, golden))
    path = os.path.join(str(folder), f"{name or os.path.basename(golden)[:-4]}.safetensors")
    return write_safetensors(synthetic.checkpoint(manifest, stats=stats), path)


@contextlib.contextmanager
def float64():
    """Keras computing in float64: the deep synthetic v1 nets amplify float32 rounding to ~1e-4 of the logits
    (keras.applications' own float32 ResNet-152 differs that much from its float64 self), so their check runs
    where rounding cannot hide a wrong rule."""
    previous, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")  # a global policy set by an earlier test would otherwise win
    try:
        yield
    finally:
        keras.config.set_floatx(previous)
        keras.config.set_dtype_policy(policy)


# keras.applications: ResNet v1 ("caffe": BGR, conv biases folded into BN), v2 (TF-slim form, "tf" inputs)

@pytest.mark.parametrize("application, name, bgr", [
    pytest.param(keras.applications.ResNet50, "resnet50", True, id="ResNet50"),
    pytest.param(keras.applications.ResNet50V2, "resnet50_v2", False, id="ResNet50V2"),
])
def test_keras_application_resnet_computes_the_same_function(application, name, bgr, tmp_path):
    path, reference = synthetic.keras_application_golden(application, SIZE, str(tmp_path))
    check_logits(synthetic.keras_logits(name, path, SIZE, "keras.applications", bgr_reference=bgr), reference)


@pytest.mark.slow
@pytest.mark.parametrize("application, name, bgr", [
    pytest.param(keras.applications.ResNet101, "resnet101", True, id="ResNet101"),
    pytest.param(keras.applications.ResNet152, "resnet152", True, id="ResNet152"),
    pytest.param(keras.applications.ResNet101V2, "resnet101_v2", False, id="ResNet101V2"),
    pytest.param(keras.applications.ResNet152V2, "resnet152_v2", False, id="ResNet152V2"),
])
def test_deep_keras_application_resnets_compute_the_same_function(application, name, bgr, tmp_path):
    with float64():
        path, reference = synthetic.keras_application_golden(application, SIZE, str(tmp_path))
        check_logits(synthetic.keras_logits(name, path, SIZE, "keras.applications", bgr_reference=bgr), reference)


def test_keras_application_v2_without_the_top_is_the_trunk_and_records_its_options(tmp_path):
    """A file without the classifier (keras.applications' ``*_notop.h5``) loads into ``include_top=False``: the
    feature map (after post_bn-ReLU) is keras.applications' own; the TF-slim options are set and recorded."""
    path, reference = synthetic.keras_application_golden(keras.applications.ResNet50V2, SIZE, str(tmp_path),
                                                         include_top=False)
    model = keras_cnn.build("resnet50_v2", weights=path, input_shape=(SIZE, SIZE, 3), include_top=False)
    actual = model.predict(synthetic.images(size=SIZE, **synthetic.GOLDEN_IMAGES), verbose=0)
    assert actual.shape == reference.shape == (4, 2, 2, 2048)
    check_logits(actual.reshape(4, -1), reference.reshape(4, -1))
    config = keras_cnn.model_config(model)
    assert (config["downsample"], config["stem_norm"], config["conv_bias"]) == ("last", False, True)
    assert checkpoint_info(model)["preprocessing"]["mean"] == [0.5, 0.5, 0.5]  # "tf" inputs in [-1, 1]
    with pytest.raises(ValueError, match=r"keras\.applications:ResNet50V2 weights need downsample='last' for "
                                         r"'resnet50_v2'; received downsample='first'"):
        keras_cnn.build("resnet50_v2", weights=path, include_top=False, downsample="first")


# A full checkpoint into a model without its classifier, or with another number of classes

def test_include_top_false_loads_the_trunk_of_a_full_checkpoint(tmp_path):
    path = torch_file(tmp_path, "torchvision/resnet18.npz")
    full = keras_cnn.build("resnet18", weights=path, input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    trunk = keras_cnn.build("resnet18", weights=path, input_shape=(SIZE, SIZE, 3), include_top=False,
                            pooling="avg")
    batch = synthetic.images(size=SIZE, **synthetic.GOLDEN_IMAGES)
    penultimate = keras.Model(full.input, full.get_layer("predictions").input).predict(batch, verbose=0)
    np.testing.assert_allclose(trunk.predict(batch, verbose=0), penultimate, rtol=0, atol=1e-6)
    assert checkpoint_info(trunk)["upstream"] == "resnet18"
    # the full model is the upstream function (the golden's logits), so the trunk is the upstream trunk
    check_logits(full.predict(batch, verbose=0), synthetic.read_golden(os.path.join(GOLDENS,
                                                                                     "torchvision/resnet18.npz"))[2])


def test_other_classes_keep_the_trunk_and_start_a_new_head(tmp_path, caplog):
    path = torch_file(tmp_path, "torchvision/resnet18.npz")
    full = keras_cnn.build("resnet18", weights=path, input_shape=(SIZE, SIZE, 3))
    with caplog.at_level(logging.WARNING, logger="keras_cnn.weights"):
        model = keras_cnn.build("resnet18", weights=path, input_shape=(SIZE, SIZE, 3), classes=10)
    assert "torchvision:resnet18 has 1000 classes, the model 10" in caplog.text
    mine, theirs = _weights.canonical_weights(model), _weights.canonical_weights(full)
    assert set(mine) == set(theirs)
    for key in theirs:
        if not key.startswith("predictions/"):
            np.testing.assert_array_equal(mine[key], theirs[key], err_msg=key)
    assert mine["predictions/kernel"].shape == (512, 10)
    assert not np.any(mine["predictions/bias"])  # Keras's initial bias, not the checkpoint's fc.bias


# Checkpoints of another ResNet: one ValueError naming the tensor, nothing loaded

def test_resnet34_checkpoint_into_resnet50_names_what_it_is(tmp_path):
    path = torch_file(tmp_path, "torchvision/resnet34.npz")
    with pytest.raises(ValueError, match=r"resnet34\.safetensors .* matches no known checkpoint of 'resnet50' .*"
                                         r"first tensors: 'conv1\.weight'.*It looks like .*torchvision:resnet34 "
                                         r"\(keras_cnn 'resnet34'\)"):
        keras_cnn.build("resnet50", weights=path, input_shape=(SIZE, SIZE, 3))
    model = keras_cnn.build("resnet50", input_shape=(SIZE, SIZE, 3))
    before = _weights.canonical_weights(model)
    with pytest.raises(ValueError, match="matches no known checkpoint of 'resnet50'"):
        load_checkpoint(model, path)
    _assert_unchanged(model, before)


def test_resnext_checkpoint_into_resnet50_fails_on_a_shape_and_loads_nothing(tmp_path):
    """A checkpoint with resnet50's tensor names but ResNeXt's widths passes detection; the first tensor whose
    shape differs stops the conversion before any assignment."""
    path = torch_file(tmp_path, "torchvision/resnext50_32x4d.npz")
    model = keras_cnn.build("resnet50", input_shape=(SIZE, SIZE, 3))
    before = _weights.canonical_weights(model)
    with pytest.raises(ValueError, match=r"torchvision:resnet50: tensor 'layer1\.0\.conv1\.weight' \(128, 64, 1, 1\)"
                                         r".* gives shape \(1, 1, 64, 128\) for keras_cnn weight "
                                         r"'stage1_block1_conv1/kernel', which has shape \(1, 1, 64, 64\); nothing "
                                         r"was loaded"):
        load_checkpoint(model, path)
    _assert_unchanged(model, before)


def _assert_unchanged(model, before):
    after = _weights.canonical_weights(model)
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)


# Detection and records

def test_timm_resnet50_shares_torchvisions_names_and_is_chosen_by_source(tmp_path):
    checkpoint = read_checkpoint(torch_file(tmp_path, "timm/resnet50.npz"))
    assert detect("resnet50", checkpoint).key == "torchvision:resnet50"  # registered first
    timm = detect("resnet50", checkpoint, "timm")
    assert timm.key == "timm:resnet50" and timm.preprocessing["interpolation"] == "bicubic"
