"""Every registered model exports to SavedModel, TFLite (float32) and ONNX, each within 1e-4 of Keras.

The conversions cost 5 s to 11 min a model on 2 cores (resnet1202), so CI runs one representative per family
(CI_EXPORT) and the rest carry the ``slow`` mark: ``make test-exports`` (part of ``make test-all``) runs every
model's test in its own process.
"""

import gc

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import export
from keras_cnn.layers import (CeilModeMaxPooling2D, ChannelShuffle, ChannelSplit, ConcatBNReLUConv,
                              DepthwiseAveragePooling2D, DropPath, LocalResponseNormalization, StochasticDepth,
                              ZeroPadChannels)
from keras_cnn.layers.inception_blocks import ScaledResidual
from tests.conftest import small_size

# Cheap representatives of each head and block kind: flatten (lenet5), conv head (nin, squeezenet1_1), Inception
# with ceil-mode pooling (googlenet), option-A shortcuts (resnet20), hard-swish/SE (mobilenet_v3_small), grouped
# convolution (shufflenet_v1_g3: ONNX Conv group), split/shuffle (shufflenet_v2_x1_0). Every other keras_cnn layer
# is exported by test_every_custom_layer_exports below.
CI_EXPORT = {"lenet5", "nin", "googlenet", "resnet20", "squeezenet1_1", "mobilenet_v3_small", "shufflenet_v2_x1_0",
             "shufflenet_v1_g3"}


@pytest.fixture(autouse=True)
def release_models():
    """Free each model's graphs after its test: the slow sweep exports 73 models in one worker, whose memory
    otherwise grows until the OOM killer stops it (19 GB after about 25 models, at efficientnet_b6 and
    mobilenet_v3_large, each of which passes on its own)."""
    yield
    keras.backend.clear_session()
    gc.collect()


def export_params():
    return [pytest.param(name, id=name, marks=[pytest.mark.xdist_group(f"export-{name}")]
                         + ([] if name in CI_EXPORT else [pytest.mark.slow]))
            for name in keras_cnn.list_models()]


@pytest.mark.parametrize("name", export_params())
def test_exports_agree_with_keras(name, tmp_path):
    size = small_size(name)
    model = keras_cnn.build(name, input_shape=(size, size, 3), classes=3, classifier_activation=None)
    images = np.random.default_rng(0).uniform(0, 1, (4, size, size, 3)).astype("float32")
    results = [export.to_saved_model(model, tmp_path / "sm", verify_data=images),
               export.to_tflite(model, tmp_path / f"{name}.tflite", verify_data=images),
               export.to_onnx(model, tmp_path / f"{name}.onnx", verify_data=images)]
    for result in results:
        assert result.max_abs_diff <= 1e-4 * max(1.0, float(np.abs(model.predict(images, verbose=0)).max()))
        assert result.top1_agreement == 1.0


def _custom_layer_model():
    """A small model through every keras_cnn layer a registered model can contain, in inference form."""
    inputs = keras.Input((15, 15, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = CeilModeMaxPooling2D(3, 2)(x)  # 15 -> 7 (ceil mode), a padded last window
    x = keras.layers.Add()([DepthwiseAveragePooling2D(3, 1)(keras.layers.ZeroPadding2D(1)(x)), x])
    x = ChannelShuffle(2)(x)
    x = keras.layers.Concatenate()(ChannelSplit(2)(x)[::-1])
    x = ScaledResidual(0.2)([x, keras.layers.Conv2D(8, 1)(x)])
    x = DropPath(0.2)(ZeroPadChannels(4)(x))
    x = ConcatBNReLUConv(8, 3)([x, keras.layers.Conv2D(4, 1)(x)])
    branch_in = keras.Input((None, None, 8))
    branch = keras.Model(branch_in, keras.layers.Conv2D(8, 3, padding="same")(branch_in))
    x = StochasticDepth(branch, survival_probability=0.8)([x, x])
    x = LocalResponseNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def test_every_custom_layer_exports(tmp_path):
    model = _custom_layer_model()
    images = np.random.default_rng(0).uniform(0, 1, (4, 15, 15, 3)).astype("float32")
    results = [export.to_saved_model(model, tmp_path / "sm", verify_data=images),
               export.to_tflite(model, tmp_path / "custom.tflite", verify_data=images),
               export.to_onnx(model, tmp_path / "custom.onnx", verify_data=images)]
    for result in results:
        assert result.max_abs_diff <= 1e-4 and result.top1_agreement == 1.0, result
