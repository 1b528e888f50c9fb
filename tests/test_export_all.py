"""Every registered model exports to SavedModel, TFLite (float32) and ONNX, each within 1e-4 of Keras.

The conversions cost 5-60 s a model on 2 cores, so CI runs one representative per family (CI_EXPORT) and the
rest carry the ``slow`` mark: ``make test-all`` (or ``pytest -m slow``) runs them.
"""

import numpy as np
import pytest

import keras_cnn
from keras_cnn import export
from tests.conftest import small_size

CI_EXPORT = {"lenet5", "nin", "googlenet", "inception_resnet_v2", "xception", "resnet18", "resnext50_32x4d",
             "se_resnet50", "resnet20", "densenet121", "squeezenet1_1", "mobilenet_v3_small", "shufflenet_v2_x1_0",
             "shufflenet_v1_g3", "efficientnet_b0"}


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
