"""The bundled digits data and apps/train.py run as a script."""

import json
import os

import keras
import numpy as np
import pytest

from keras_cnn import data


def test_digits_split_is_stratified_disjoint_and_fixed():
    splits = data.digits(image_size=(16, 20), channels=3)
    sizes = {k: len(v[1]) for k, v in splits.items()}
    assert sum(sizes.values()) == 1797 and sizes["test"] == 360
    x_train, y_train = splits["train"]
    assert x_train.shape[1:] == (16, 20, 3) and x_train.dtype == np.float32
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    np.testing.assert_array_equal(x_train[..., 0], x_train[..., 2])
    for _, y in splits.values():  # every class in every split, in proportion (+-2 images)
        counts = np.bincount(y, minlength=10)
        assert counts.min() >= 0.09 * len(y) - 2 and counts.max() <= 0.115 * len(y) + 2
    again = data.digits(image_size=(16, 20), channels=3)
    np.testing.assert_array_equal(again["test"][1], splits["test"][1])
    flat = {x.tobytes() for x in splits["test"][0]}
    assert not flat & {x.tobytes() for x in x_train}


def test_digits_rejects_bad_arguments():
    with pytest.raises(ValueError, match="split must be three positive fractions"):
        data.digits(split=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="image_size must be >= 8"):
        data.digits(image_size=(4, 4))


def test_train_app_runs_and_saves_a_reloadable_model(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "apps/train.py", "--epochs", "2", "--option", "activation=relu",
                             "--option", "pool=max", "--output", str(tmp_path)], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Training summary: lenet5 on digits" in result.stdout
    summary = json.loads((tmp_path / "lenet5_train" / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.5  # two epochs of real learning, far above the 0.1 of chance
    model = keras.saving.load_model(tmp_path / "lenet5.keras", safe_mode=True)
    assert model.output_shape == (None, 10)


def test_parse_options():
    from keras_cnn.cli import parse_options

    assert parse_options(["pool=max", "batch_norm=True", "dropout=0.3"]) == {
        "pool": "max", "batch_norm": True, "dropout": 0.3}
