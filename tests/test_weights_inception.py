"""Inception checkpoints (issue #17): keras.applications' InceptionV3 and InceptionResNetV2 computed here, the
torchvision/timm rows through their goldens (tests/test_weights_upstream.py runs every golden; here the rows that
need more than that: Inception-v4's branch order, GoogLeNet's auxiliary heads, the keras.applications files)."""

import os

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn.weights import checkpoint_info, get_upstream, synthetic, upstreams
from keras_cnn.weights._convert import detect
from keras_cnn.weights._readers import Checkpoint, _renumbered, write_safetensors
from keras_cnn.weights.families.inception import GOOGLENET_TORCHVISION

GOLDENS = os.path.join(os.path.dirname(__file__), "goldens")
TOLERANCE = 1e-4


def _offset_auto_names():
    """Layers Keras names itself, so the application below numbers its own from an offset (as a file saved after
    other models in a session does): the reader's renumbering must undo it."""
    keras.layers.Conv2D(1, 1)
    keras.layers.BatchNormalization()


@pytest.mark.parametrize("application, name", [
    pytest.param("InceptionV3", "inception_v3", id="InceptionV3", marks=pytest.mark.xdist_group("inception_v3")),
    # the former silent wrong result: mixed_6a/mixed_7a concatenated the pooling first, so these weights loaded
    # without error and computed another function
    pytest.param("InceptionResNetV2", "inception_resnet_v2", id="InceptionResNetV2",
                 marks=pytest.mark.xdist_group("inception_resnet_v2"))])
def test_keras_applications_weights_give_equal_logits(application, name, tmp_path):
    _offset_auto_names()
    path, reference = synthetic.keras_application_golden(getattr(keras.applications, application), 75,
                                                         str(tmp_path))
    actual = synthetic.keras_logits(name, path, 75, "keras.applications")
    assert synthetic.input_dependence(reference) >= 0.05
    assert synthetic.relative_error(actual, reference) <= TOLERANCE


def test_auto_named_keras_layers_are_renumbered_by_creation():
    layers = ["conv2d_57", "batch_normalization_57", "block35_1_conv", "conv2d", "conv2d_100", "conv_7b",
              "conv_7b_bn", "predictions", "mixed_5b"]
    assert _renumbered(layers) == {"conv2d": "conv2d_1", "conv2d_57": "conv2d_2", "conv2d_100": "conv2d_3",
                                   "batch_normalization_57": "batch_normalization_1"}


def _googlenet_checkpoint(folder):
    manifest, stats, reference, size = synthetic.read_golden(os.path.join(GOLDENS, "torchvision", "googlenet.npz"))
    tensors = synthetic.checkpoint(manifest, stats=stats)
    return tensors, write_safetensors(tensors, os.path.join(folder, "googlenet.safetensors")), reference, size


@pytest.mark.xdist_group("googlenet")
def test_torchvision_googlenet_auxiliary_heads_load_with_aux_logits(tmp_path):
    tensors, path, reference, size = _googlenet_checkpoint(str(tmp_path))
    model = keras_cnn.build("googlenet", weights=path, aux_logits=True, input_shape=(size, size, 3),
                            classifier_activation=None)
    main, *_ = model.predict(synthetic.images(size=size, **synthetic.GOLDEN_IMAGES), verbose=0)
    assert synthetic.relative_error(main, reference) <= TOLERANCE
    np.testing.assert_array_equal(model.get_layer("aux2_predictions").kernel, tensors["aux2.fc2.weight"].T)
    # torchvision flattens the (128, 4, 4) map channel-first: row c * 16 + i * 4 + j of fc1 is Keras's
    # (i * 4 + j) * 128 + c
    fc1 = tensors["aux1.fc1.weight"].reshape(1024, 128, 4, 4)
    np.testing.assert_array_equal(model.get_layer("aux1_fc").kernel[(1 * 4 + 2) * 128 + 5], fc1[:, 5, 1, 2])
    info = checkpoint_info(model)
    assert info["upstream"] == "googlenet" and info["preprocessing"]["mean"] == [0.5, 0.5, 0.5]
    # a new classifier: the trunk and the auxiliary trunks load, the three classifiers start fresh
    tuned = keras_cnn.build("googlenet", weights=path, aux_logits=True, classes=10, input_shape=(size, size, 3))
    np.testing.assert_array_equal(tuned.get_layer("aux1_conv").kernel, model.get_layer("aux1_conv").kernel)
    with pytest.raises(ValueError, match="aux_pooling='adaptive'"):
        keras_cnn.build("googlenet", weights=path, aux_pooling="window")


def test_timm_inception_v3_tags_are_told_apart_by_aux_logits_or_weights_source():
    def checkpoint(names):
        return Checkpoint("inception_v3.safetensors", "safetensors", {n: np.zeros(1) for n in names})

    plain = checkpoint(get_upstream("timm:inception_v3.tf_in1k").signature)
    with_aux = checkpoint(get_upstream("timm:inception_v3.tv_in1k").signature)
    assert detect("inception_v3", plain, "timm").key == "timm:inception_v3.tf_in1k"
    assert detect("inception_v3", with_aux, "timm").key == "timm:inception_v3.tv_in1k"
    assert detect("inception_v3", with_aux).key == "torchvision:inception_v3"
    gluon = detect("inception_v3", plain, "timm:inception_v3.gluon_in1k")
    assert gluon.preprocessing["mean"] == (0.485, 0.456, 0.406)
    assert get_upstream("timm:inception_v3.tf_in1k").preprocessing["mean"] == (0.5, 0.5, 0.5)


def test_inception_rows_and_the_ones_without_a_checkpoint():
    keys = {u.key for u in upstreams() if u.model in ("googlenet", "inception_v3", "inception_v4",
                                                       "inception_resnet_v2")}
    assert keys == {"torchvision:googlenet", "torchvision:inception_v3", "timm:inception_v3.tv_in1k",
                    "timm:inception_v3.tf_in1k", "timm:inception_v3.tf_adv_in1k", "timm:inception_v3.gluon_in1k",
                    "timm:inception_v4.tf_in1k", "timm:inception_resnet_v2.tf_in1k",
                    "timm:inception_resnet_v2.tf_ens_adv_in1k", "keras.applications:InceptionV3",
                    "keras.applications:InceptionResNetV2"}
    # no released checkpoints: BN-Inception, SE-Inception-v3, Inception-ResNet-v1
    assert not any(upstreams(model=m) for m in ("inception_v2", "se_inception_v3", "inception_resnet_v1"))
    assert get_upstream("torchvision:googlenet").options == GOOGLENET_TORCHVISION
