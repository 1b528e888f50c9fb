"""``TrainConfig``: the train app's settings as one frozen object, from argparse or built in Python."""

import dataclasses
import json

import pytest

from keras_cnn.app import train
from keras_cnn.app.train_config import RunFiles, TrainConfig


def test_defaults_round_trip_and_every_flag_is_a_field():
    args = train.parser().parse_args([])
    assert {field.name for field in dataclasses.fields(TrainConfig)} == set(vars(args))
    assert TrainConfig.from_args(args) == TrainConfig()


def test_flags_map_to_fields_of_the_same_name():
    args = train.parser().parse_args(["--model", "alexnet", "--option", "groups=2", "--option", "lrn=False",
                                      "--scale-jitter", "256,512", "--batch-size", "8", "--no-resume",
                                      "--mixed-precision", "--loop", "custom", "--name", "mine", "--output", "out"])
    config = TrainConfig.from_args(args)
    assert config.option == ("groups=2", "lrn=False") and config.scale_jitter == (256, 512)
    assert (config.batch_size, config.resume, config.mixed_precision, config.custom_loop) == (8, False, True, True)
    assert RunFiles.of(config) == RunFiles("out/mine.keras", "out/mine.preprocessing.json", "out/mine_train")
    assert config == dataclasses.replace(TrainConfig(), **{k: v for k, v in vars(args).items()})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 2


@pytest.mark.parametrize("values, message", [
    ({"random_crop": 40, "scale_jitter": [40, 48]}, "--random-crop and --scale-jitter both choose the crop"),
    ({"image_size": 16}, "--image-size must be at least 32 for model 'lenet5' (its smallest input); received 16."),
    ({"scale_jitter": (16, 48)}, "--scale-jitter must be at least the input size 32; received 16."),
    ({"loop": "fit", "strategy": "multiworker"}, "--loop fit cannot run under --strategy multiworker"),
    ({"backup_steps": 4}, "--backup-steps backs up the custom loop"),
])
def test_building_a_config_checks_flags_that_depend_on_each_other(values, message):
    with pytest.raises(ValueError) as excinfo:
        TrainConfig(**values)
    assert message in str(excinfo.value)


def test_run_trains_from_a_config_without_argparse(tmp_path):
    config = TrainConfig(model="lenet5", option=["pool=max", "activation=relu"], epochs=1, limit=48, batch_size=16,
                         output=str(tmp_path))
    summary = train.run(config)
    assert summary["epochs"] == [0] and summary["optimizer_steps"] == 3 and summary["test_images"] == 48
    assert json.loads((tmp_path / "lenet5_train" / "summary.json").read_text()) == summary
    assert (tmp_path / "lenet5.keras").is_file() and (tmp_path / "lenet5.preprocessing.json").is_file()
