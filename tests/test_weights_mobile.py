"""Upstream checkpoints of MobileNet v1/v2/v3 and EfficientNet (issue #17).

The torchvision/timm goldens run in tests/test_weights_upstream.py; here: keras.applications' models (reference
logits computed in the test, from files with the released files' tensor names), the preprocessing MobileNetV3 and
EfficientNet carry inside reproduced by the recorded one, the options the PyTorch-born checkpoints set, and the
errors for a checkpoint of a sibling variant.
"""

import os
import re

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn.weights import checkpoint_info, get_upstream, preprocess_input, synthetic, upstreams

GOLDENS = os.path.join(os.path.dirname(__file__), "goldens")
TOLERANCE = 1e-4
MIN_INPUT_DEPENDENCE = 0.05
# keras.applications' depthwise layers: MobileNet's conv_dw_<i>, MobileNetV2/V3's *depthwise, EfficientNet's *dwconv
DEPTHWISE = re.compile(r"conv_dw_\d+|.*_depthwise|.*_dwconv")
IMAGENET_MEAN, IMAGENET_STD = np.array((0.485, 0.456, 0.406)), np.array((0.229, 0.224, 0.225))


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def as_released(path):
    """A Keras 3 legacy ``.h5`` file with the names of the files keras.applications downloads: Keras 2 wrote a
    ``DepthwiseConv2D`` kernel as ``<layer>/depthwise_kernel:0`` (Keras 3 names it ``kernel``)."""
    import h5py

    with h5py.File(path, "r+") as file:
        for layer in map(_text, file.attrs["layer_names"]):
            if not DEPTHWISE.fullmatch(layer):
                continue
            group, names = file[layer], []
            for name in map(_text, group.attrs["weight_names"]):
                if name.endswith("/kernel"):
                    group.move(name, name[:-len("kernel")] + "depthwise_kernel:0")
                    name = name[:-len("kernel")] + "depthwise_kernel:0"
                names.append(name.encode())
            group.attrs["weight_names"] = names
    return path


def released_application(application, size, folder, **kwargs):
    """``(path, reference logits)`` of a seeded keras.applications model saved as a released-style file."""
    path, reference = synthetic.keras_application_golden(application, size, folder, **kwargs)
    return as_released(path), reference


def check_logits(actual, reference):
    assert synthetic.input_dependence(reference) >= MIN_INPUT_DEPENDENCE
    assert synthetic.relative_error(actual, reference) <= TOLERANCE


# --- keras.applications -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("application, name, released, options", [
    pytest.param("MobileNetV2", "mobilenet_v2", True, {}, id="MobileNetV2"),
    pytest.param("MobileNetV2", "mobilenet_v2", False, {}, id="MobileNetV2-keras3-names", marks=pytest.mark.slow),
    pytest.param("MobileNetV2", "mobilenet_v2", True, {"alpha": 0.35}, id="MobileNetV2-alpha0.35",
                 marks=pytest.mark.slow),
    pytest.param("MobileNet", "mobilenet_v1", True, {}, id="MobileNet", marks=pytest.mark.slow),
    pytest.param("MobileNet", "mobilenet_v1", True, {"alpha": 0.5}, id="MobileNet-alpha0.5", marks=pytest.mark.slow),
])
def test_keras_applications_mobilenet_computes_the_same_logits(application, name, released, options, tmp_path):
    """keras.applications pads the strided depthwise convolutions with ZeroPadding2D (correct_pad, or
    ((0, 1), (0, 1)) in v1) before a valid convolution: TensorFlow's "same" on the even maps of a 64 input. A file
    saved by Keras 3 (depthwise kernels named ``kernel``) loads as the released ones do; the released widths other
    than 1.0 load with the same ``alpha``."""
    path, reference = synthetic.keras_application_golden(getattr(keras.applications, application), 64,
                                                         str(tmp_path), **options)
    path = as_released(path) if released else path
    check_logits(synthetic.keras_logits(name, path, 64, "keras.applications", **options), reference)


@pytest.mark.slow
@pytest.mark.parametrize("application, name", [("MobileNetV3Small", "mobilenet_v3_small"),
                                               ("MobileNetV3Large", "mobilenet_v3_large")])
def test_keras_applications_mobilenet_v3_and_its_rescaling(application, name, tmp_path):
    """The trunk (built without its Rescaling layer) computes the same logits; the full model, Rescaling(1 / 127.5,
    offset=-1) on 0-255 pixels included, equals keras_cnn on ``preprocess_input`` of the same pixels."""
    size = 64
    path, reference = released_application(getattr(keras.applications, application), size, str(tmp_path),
                                           include_preprocessing=False)
    model = keras_cnn.build(name, weights=path, input_shape=(size, size, 3), classifier_activation=None)
    images = synthetic.images(size=size, **synthetic.GOLDEN_IMAGES)
    check_logits(model.predict(images, verbose=0), reference)
    full = getattr(keras.applications, application)(weights=None, input_shape=(size, size, 3),
                                                    classifier_activation=None)
    full.load_weights(path)
    pixels = 127.5 * (images + 1.0)  # the pixels the trunk sees as ``images``
    check_logits(model.predict(preprocess_input(model, pixels), verbose=0), full.predict(pixels, verbose=0))


def released_efficientnet(application, size, folder, *, imagenet_path, monkeypatch=None):
    """``(path, model)``: a keras.applications EfficientNet with seeded weights whose Normalization holds the
    released files' mean (0.485, 0.456, 0.406) and "variance" (0.229, 0.224, 0.225), BatchNorm statistics
    calibrated on pixels the model normalises to the calibration images, saved as a released-style file.

    ``imagenet_path``: the model ``weights="imagenet"`` builds (Rescaling(1 / 255), Normalization, Rescaling(1 /
    sqrt(std))), ``get_file`` returning a seeded file instead of downloading; else ``weights=None``'s (no last
    Rescaling)."""
    import h5py
    from keras.src.applications import efficientnet
    from keras.src.legacy.saving import legacy_h5_format

    seed_path, _ = synthetic.keras_application_golden(application, 32, folder, filename="seed.h5")
    if imagenet_path:
        monkeypatch.setattr(efficientnet.file_utils, "get_file", lambda *args, **kwargs: seed_path)
    model = application(weights="imagenet" if imagenet_path else None, input_shape=(size, size, 3),
                        classifier_activation=None)
    if not imagenet_path:
        model.load_weights(seed_path)
    norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    norm.adapt_mean.assign(IMAGENET_MEAN)
    norm.adapt_variance.assign(IMAGENET_STD)  # the released files' slip: the standard deviations as variance
    norm.finalize_state()
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(efficientnet_pixels(synthetic.images(size=size, **synthetic.CALIBRATION_IMAGES), imagenet_path),
          training=True)
    path = os.path.join(folder, "efficientnet.h5")
    with h5py.File(path, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, model)
    return as_released(path), model


def efficientnet_pixels(images, imagenet_path):
    """0-255 pixels the model's own layers normalise to ``images``: ``(x / 255 - mean) / sqrt(variance)``, with
    variance = std, then ``/ sqrt(std)`` on the imagenet path."""
    scale = IMAGENET_STD if imagenet_path else np.sqrt(IMAGENET_STD)
    return ((images * scale + IMAGENET_MEAN) * 255.0).astype(np.float32)


def test_keras_applications_efficientnet_b0_with_its_preprocessing(tmp_path, monkeypatch):
    """The model keras.applications builds for the released weights (its preprocessing layers included, at the
    224 its include_top imagenet path requires) equals keras_cnn on the recorded preprocessing of the same pixels:
    the record (ImageNet mean and std) is what the released Normalization and the extra Rescaling compute."""
    size = 224
    path, application = released_efficientnet(keras.applications.EfficientNetB0, size, str(tmp_path),
                                              imagenet_path=True, monkeypatch=monkeypatch)
    assert sum(isinstance(layer, keras.layers.Rescaling) for layer in application.layers) == 2  # 1/255, 1/sqrt(std)
    pixels = efficientnet_pixels(synthetic.images(size=size, **synthetic.GOLDEN_IMAGES), imagenet_path=True)
    model = keras_cnn.build("efficientnet_b0", weights=path, input_shape=(size, size, 3), classifier_activation=None)
    assert checkpoint_info(model)["upstream"] == "EfficientNetB0"
    check_logits(model.predict(preprocess_input(model, pixels), verbose=0), application.predict(pixels, verbose=0))


@pytest.mark.slow
@pytest.mark.parametrize("variant", range(1, 8))
def test_keras_applications_efficientnet_computes_the_same_logits(variant, tmp_path):
    """B1-B7 at 96 (their imagenet path would need their full resolutions), as ``weights=None`` builds them: keras_cnn
    on what the trunk sees, ``(x / 255 - mean) / sqrt(variance)``."""
    size = 96
    path, application = released_efficientnet(getattr(keras.applications, f"EfficientNetB{variant}"), size,
                                              str(tmp_path), imagenet_path=False)
    pixels = efficientnet_pixels(synthetic.images(size=size, **synthetic.GOLDEN_IMAGES), imagenet_path=False)
    model = keras_cnn.build(f"efficientnet_b{variant}", weights=path, input_shape=(size, size, 3),
                            classifier_activation=None)
    normalised = ((pixels / 255.0 - IMAGENET_MEAN) / np.sqrt(IMAGENET_STD)).astype(np.float32)
    check_logits(model.predict(normalised, verbose=0), application.predict(pixels, verbose=0))


def test_keras_applications_efficientnet_with_another_normalization_is_refused(tmp_path):
    """A file whose Normalization is not the released one (here: never adapted, mean 0 and variance 1) would need
    another preprocessing than the recorded one: refused, nothing loaded."""
    path, _ = released_application(keras.applications.EfficientNetB0, 32, str(tmp_path))
    with pytest.raises(ValueError, match=r"Normalization layer holds mean \[0\.0, 0\.0, 0\.0\]"):
        keras_cnn.build("efficientnet_b0", weights=path, input_shape=(32, 32, 3))


# --- options and errors -----------------------------------------------------------------------------------------

def test_each_checkpoint_sets_the_padding_and_epsilon_it_was_trained_with():
    pytorch, symmetric = {"padding": "symmetric", "bn_epsilon": 1e-5}, {"padding": "symmetric"}
    expected = {"torchvision:mobilenet_v2": pytorch, "timm:mobilenetv1_100": pytorch,
                "torchvision:mobilenet_v3_large": symmetric, "torchvision:mobilenet_v3_small": symmetric,
                "timm:mobilenetv3_large_100": pytorch, "timm:mobilenetv3_small_100": pytorch,
                **{f"torchvision:efficientnet_b{i}": pytorch for i in range(5)},
                **{f"torchvision:efficientnet_b{i}": symmetric for i in range(5, 8)},
                **{f"timm:efficientnet_b{i}": pytorch for i in range(6)}}
    family = [u for u in upstreams() if u.model.startswith(("mobilenet", "efficientnet"))]
    # MobileNets: 3 torchvision, 5 timm, 4 keras.applications; EfficientNets: 3 per variant, timm's own B0-B5
    assert len(family) == 3 + 5 + 4 + 8 * 3 + 6
    for upstream in family:  # timm's tf_* ports and keras.applications: the TensorFlow defaults
        assert dict(upstream.options) == expected.get(upstream.key, {}), upstream.key


def test_timm_ports_and_timm_trainings_share_tensors_and_the_source_tells_them_apart(tmp_path):
    """timm's tf_mobilenetv3_small_100 and mobilenetv3_small_100 have the same tensors but need different padding
    and epsilon: without weights_source the build refuses to guess (a guess would be a silently wrong function);
    weights_source selects each row and its options."""
    manifest, stats, _, size = synthetic.read_golden(os.path.join(GOLDENS, "timm", "tf_mobilenetv3_small_100.npz"))
    path = keras_cnn.weights.write_safetensors(synthetic.checkpoint(manifest, stats=stats),
                                               str(tmp_path / "small.safetensors"))
    with pytest.raises(ValueError, match=r"fits several checkpoints of 'mobilenet_v3_small' that compute different "
                                         r"functions: 'timm:tf_mobilenetv3_small_100' \(default options\), "
                                         r"'timm:mobilenetv3_small_100' \(padding='symmetric', bn_epsilon=1e-05\); "
                                         r"pass weights_source"):
        keras_cnn.build("mobilenet_v3_small", weights=path, input_shape=(size, size, 3))
    ported = keras_cnn.build("mobilenet_v3_small", weights=path, input_shape=(size, size, 3),
                             weights_source="timm:tf_mobilenetv3_small_100")
    assert checkpoint_info(ported)["upstream"] == "tf_mobilenetv3_small_100"
    assert not any(layer.name.endswith("_pad") for layer in ported.layers)
    chosen = keras_cnn.build("mobilenet_v3_small", weights=path, input_shape=(size, size, 3),
                             weights_source="timm:mobilenetv3_small_100")
    assert checkpoint_info(chosen)["upstream"] == "mobilenetv3_small_100"
    assert chosen.get_layer("conv1_pad") and chosen.get_layer("conv1_bn").epsilon == 1e-5


def test_a_sibling_variant_checkpoint_is_refused_by_name(tmp_path):
    """A MobileNetV3-Large checkpoint given for the small model: no signature of mobilenet_v3_small matches, and
    the error names what the file looks like."""
    upstream = get_upstream("torchvision:mobilenet_v3_large")
    manifest, stats, _, _ = synthetic.read_golden(os.path.join(GOLDENS, "torchvision", "mobilenet_v3_large.npz"))
    path = keras_cnn.weights.write_safetensors(synthetic.checkpoint(manifest, stats=stats),
                                               str(tmp_path / "large.safetensors"))
    with pytest.raises(ValueError, match=r"matches no known checkpoint of 'mobilenet_v3_small'.*"
                                         + re.escape(upstream.key)):
        keras_cnn.build("mobilenet_v3_small", weights=path, input_shape=(32, 32, 3))


def test_a_torchvision_checkpoint_loads_as_a_trunk_and_with_new_classes(tmp_path):
    """include_top=False leaves out MobileNetV3's two-layer classifier; other classes keep head_fc."""
    manifest, stats, _, size = synthetic.read_golden(os.path.join(GOLDENS, "torchvision", "mobilenet_v3_small.npz"))
    path = keras_cnn.weights.write_safetensors(synthetic.checkpoint(manifest, stats=stats),
                                               str(tmp_path / "small.safetensors"))
    trunk = keras_cnn.build("mobilenet_v3_small", weights=path, include_top=False, input_shape=(size, size, 3))
    assert trunk.get_layer("conv1_pad") and trunk.get_layer("conv1_bn").epsilon == 1e-3
    model = keras_cnn.build("mobilenet_v3_small", weights=path, classes=7, input_shape=(size, size, 3))
    fc = dict(synthetic.checkpoint(manifest, stats=stats))["classifier.0.weight"]
    np.testing.assert_array_equal(model.get_layer("head_fc").kernel.numpy(), fc.T)
