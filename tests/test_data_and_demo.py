"""The bundled digits data and the first training app."""

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


def test_train_app_runs_and_saves_a_reloadable_model(tmp_path, capsys):
    from apps import train

    accuracy = train.main(["--epochs", "2", "--option", "activation=relu", "--option", "pool=max",
                           "--output", str(tmp_path)])
    assert accuracy > 0.5  # two epochs of real learning, far above the 0.1 of chance
    model = keras.saving.load_model(tmp_path / "lenet5_digits.keras", safe_mode=True)
    assert model.output_shape == (None, 10)
    assert "test accuracy" in capsys.readouterr().out


def test_parse_options():
    from keras_cnn.cli import parse_options

    assert parse_options(["pool=max", "batch_norm=True", "dropout=0.3"]) == {
        "pool": "max", "batch_norm": True, "dropout": 0.3}
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        parse_options(["pool"])
