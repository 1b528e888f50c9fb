"""The apps around upstream checkpoints, on the LeNet-5 test checkpoint (tests/lenet_checkpoint.py): ``keras-cnn
convert-weights``, predict / evaluate / export of a converted model without its record, and ``keras-cnn train
--weights CHECKPOINT --freeze-backbone N`` (both phases, and a run stopped between them that resumes)."""

import json
import os
import stat
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_cnn
from keras_cnn import _weights, cli
from keras_cnn.app import evaluate, export, fit_callbacks, predict, preprocessing, train
from keras_cnn.app.train_config import TrainConfig
from tests.lenet_checkpoint import lenet_entry, lenet_file, registered  # noqa: F401  (fixture)

FILES = ["lenet5.keras", "lenet5.preprocessing.json", "lenet5.weights.h5"]
TRUNK = ("c1", "c3", "c5", "f6")  # f6, a hidden fully connected layer, came with the checkpoint: trunk
TINY = ["--model", "lenet5", "--limit", "64", "--batch-size", "16", "--verbose", "0"]  # 4 steps per epoch


@pytest.fixture
def lenet_upstream():
    """The test checkpoint, resized to 36 before its 32x32 centre crop (so the record's ratio shows)."""
    with registered(lenet_entry(resize=36)) as upstream:
        yield upstream


def convert(lenet_file, output, *extra):
    return cli.main(["convert-weights", "--model", "lenet5", "--from", lenet_file, "--output", str(output), *extra])


def trunk(weights):
    return {k: v for k, v in weights.items() if k.split("/")[0] in TRUNK}


def assert_same(mine, theirs):
    assert mine.keys() == theirs.keys()
    for key in mine:
        np.testing.assert_array_equal(mine[key], theirs[key], err_msg=key)


# ---------------------------------------------------------------- convert-weights


def test_convert_weights_writes_the_weights_the_model_and_the_record(lenet_upstream, lenet_file, tmp_path, capsys):
    previous = os.umask(0o022)
    try:
        assert convert(lenet_file, tmp_path / "out") == 0
    finally:
        os.umask(previous)
    out = tmp_path / "out"
    assert sorted(os.listdir(out)) == FILES  # no temporary file left
    assert {stat.S_IMODE(os.stat(out / name).st_mode) for name in FILES} == {0o644}
    reference = keras_cnn.build("lenet5", weights=lenet_file, classes=10)
    text = capsys.readouterr().out
    assert (f"converted torchvision:lenet_test lenet.safetensors (safetensors, 10 tensors): 10 tensors into 10 "
            f"weights of lenet5, {reference.count_params():,} parameters; wrote {out / 'lenet5.weights.h5'}") in text
    assert 'names the 10 classes by index ("0".."9")' in text
    record = json.loads((out / "lenet5.preprocessing.json").read_text())
    assert (record["normalization"], record["mean"], record["std"], record["channels"]) == ("checkpoint", [0.5],
                                                                                            [0.25], 1)
    assert record["input_size"] == [32, 32] and record["resize"] == [36, 36] and record["data"] is None
    assert record["class_names"] == [str(i) for i in range(10)] and record["pixel_transform"]["offset"] == -2.0
    model = keras.saving.load_model(out / "lenet5.keras", safe_mode=True)
    assert keras_cnn.weights.checkpoint_info(model) == keras_cnn.weights.checkpoint_info(reference)
    from_h5 = keras_cnn.build("lenet5", classes=10, weights=str(out / "lenet5.weights.h5"))
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 1)).astype("float32")
    for converted in (model, from_h5):
        np.testing.assert_array_equal(converted.predict(x, verbose=0), reference.predict(x, verbose=0))


def test_convert_weights_replaces_files_only_with_overwrite(lenet_upstream, lenet_file, tmp_path, capsys):
    convert(lenet_file, tmp_path, "--option", "classes=4")
    assert "lenet5 (a new 4-class classifier)" in capsys.readouterr().out
    before = {name: (tmp_path / name).read_bytes() for name in FILES}
    with pytest.raises(SystemExit, match=r"keras-cnn convert-weights: error: '.*lenet5.weights.h5' exists; pass "
                                         r"--overwrite to replace it"):
        convert(lenet_file, tmp_path)
    assert {name: (tmp_path / name).read_bytes() for name in FILES} == before
    assert convert(lenet_file, tmp_path, "--overwrite") == 0
    assert sorted(os.listdir(tmp_path)) == sorted(FILES + ["lenet.safetensors"])
    assert preprocessing.load(tmp_path / "lenet5.preprocessing.json").class_names == tuple("0123456789")


@pytest.mark.parametrize("extra, message", [
    (["--source", "pytorch"], "--source must be one of torchvision, timm, keras.applications or an upstream key "
                              "SOURCE:NAME (e.g. timm:resnet50); received 'pytorch'."),
    (["--source", "timm"], "matches no known checkpoint of 'lenet5'"),
    (["--name", "sub/lenet"], "--name must be a file stem without a folder"),
    (["--option", "pool=median"], "pool must be one of"),
])
def test_convert_weights_errors_name_the_flag(lenet_upstream, lenet_file, tmp_path, extra, message):
    with pytest.raises(SystemExit) as error:
        convert(lenet_file, tmp_path / "out", *extra)
    assert message in str(error.value) and not (tmp_path / "out").exists()


# ---------------------------------------------------------------- predict / evaluate / export without a record


def test_a_converted_model_without_its_record_uses_the_checkpoint_preprocessing(lenet_upstream, lenet_file,
                                                                                tmp_path, capsys):
    convert(lenet_file, tmp_path, "--name", "mini")
    os.remove(tmp_path / "mini.preprocessing.json")
    grey = tmp_path / "grey.png"  # one flat grey: the same after any resize or crop
    tf.io.write_file(str(grey), tf.io.encode_png(np.full((40, 40, 1), 200, np.uint8)))
    capsys.readouterr()
    top = predict.main(["--model", str(tmp_path / "mini.keras"), "--top-k", "10", str(grey)])[str(grey)]
    note = ("using the preprocessing of the checkpoint the weights came from (torchvision:lenet_test "
            "(lenet.safetensors)): resize to 36x36, centre crop 32x32, mean [0.5], std [0.25]; classes named by index")
    assert note in capsys.readouterr().out
    model = keras.saving.load_model(tmp_path / "mini.keras")
    got = [p for _, p in sorted(top, key=lambda pair: int(pair[0]))]
    expected, unit = (model.predict(np.full((1, 32, 32, 1), x, np.float32), verbose=0)[0]
                      for x in ((200 / 255 - 0.5) / 0.25, 200 / 255))
    np.testing.assert_allclose(got, expected, atol=1e-4)  # the PNG path resizes with antialiasing
    assert np.max(np.abs(expected - unit)) > 1e-2  # what the [0, 1] default would have given
    evaluate.main(["--model", str(tmp_path / "mini.keras"), "--data", "digits", "--limit", "20", "--report", "none",
                   "--plots", "none"])
    assert note in capsys.readouterr().out
    export.main(["--from", str(tmp_path / "mini.keras"), "--format", "tflite", "--output", str(tmp_path / "exp")])
    sidecar = json.loads((tmp_path / "exp" / "mini.tflite.json").read_text())
    assert sidecar["preprocessing"] == {"scale": pytest.approx(1 / (255 * 0.25)), "offset": -2.0}
    assert preprocessing.load(tmp_path / "exp" / "mini.preprocessing.json").normalization == "checkpoint"


# ---------------------------------------------------------------- train --weights CHECKPOINT --freeze-backbone


class Stop(Exception):
    """A run interrupted at the start of an epoch (as a kill would, without its cleanup)."""


class Snapshots(keras.callbacks.Callback):
    """Records (event, epoch, canonical weights, trainable variable count) at each fit's start and epoch end;
    raises ``Stop`` at the start of epoch ``stop_at``."""

    def __init__(self, seen, stop_at=None):
        super().__init__()
        self.seen, self.stop_at = seen, stop_at

    def _record(self, event, epoch):
        self.seen.append((event, epoch, _weights.canonical_weights(self.model), len(self.model.trainable_weights)))

    def on_train_begin(self, logs=None):
        self._record("begin", None)

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.stop_at:
            raise Stop(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self._record("end", epoch)


@pytest.fixture
def watch(monkeypatch):
    """``watch(stop_at=None) -> seen``: every fit of the next runs gets a ``Snapshots`` callback, last."""
    standard = fit_callbacks.standard

    def start(stop_at=None):
        seen = []
        monkeypatch.setattr(fit_callbacks, "standard",
                            lambda *args, **kwargs: [*standard(*args, **kwargs), Snapshots(seen, stop_at)])
        return seen
    return start


def train_args(lenet_file, output, frozen=1, epochs=2):
    return [*TINY, "--weights", lenet_file, "--freeze-backbone", str(frozen), "--epochs", str(epochs), "--output",
            str(output)]


def test_freeze_backbone_trains_the_classifier_alone_then_every_layer(lenet_upstream, lenet_file, tmp_path, watch,
                                                                      capsys):
    seen = watch()
    summary = train.main(train_args(lenet_file, tmp_path))
    checkpoint = _weights.canonical_weights(keras_cnn.build("lenet5", weights=lenet_file, classes=10))
    (_, _, start, frozen), (_, _, first, _), (_, _, second_start, unfrozen), (_, _, last, _) = seen
    assert [event[:2] for event in seen] == [("begin", None), ("end", 0), ("begin", None), ("end", 1)]
    assert (frozen, unfrozen) == (2, 10)  # predictions/{kernel,bias}, then all 10 variables
    assert_same(trunk(start), trunk(checkpoint))
    assert_same(trunk(first), trunk(checkpoint))  # phase 1 left the trunk as converted...
    assert not np.array_equal(first["predictions/kernel"], start["predictions/kernel"])  # ...and trained the head
    assert_same(second_start, first)
    assert all(not np.array_equal(last[k], checkpoint[k]) for k in trunk(checkpoint))  # phase 2 trained all
    out = capsys.readouterr().out
    assert "weights: torchvision:lenet_test (lenet.safetensors): trunk loaded, a new 10-class classifier; inputs " \
           "normalised with its mean [0.5] and std [0.25]" in out
    assert "epochs 1..1: the classifier alone (850 of 61,706 parameters train); epochs 2..2: every layer" in out
    assert summary["epochs"] == [0, 1] and summary["optimizer_steps"] == 2 * 4
    record = preprocessing.load(tmp_path / "lenet5.preprocessing.json")
    assert (record.normalization, record.mean, record.std) == ("checkpoint", (0.5,), (0.25,))
    model = keras.saving.load_model(tmp_path / "lenet5.keras")
    assert keras_cnn.weights.checkpoint_info(model)["upstream"] == "lenet_test"
    assert all(layer.trainable for layer in model.layers)
    assert not (tmp_path / "lenet5_train" / "backup").exists()


def test_a_frozen_trunk_keeps_its_batch_norm_statistics():
    model = keras_cnn.build("resnet20", input_shape=(32, 32, 3), classes=3)
    trainable = len(model.trainable_weights)
    train._set_trainable(model, head_only=True)
    before = _weights.canonical_weights(model)
    model.compile("adam", "sparse_categorical_crossentropy")
    images = np.random.default_rng(0).uniform(0, 1, (8, 32, 32, 3)).astype("float32")
    model.fit(images, np.arange(8) % 3, batch_size=8, verbose=0)
    after = _weights.canonical_weights(model)
    assert sum(key.endswith("moving_mean") for key in before) > 10
    assert {key for key in before if not np.array_equal(before[key], after[key])} == {"predictions/kernel",
                                                                                     "predictions/bias"}
    train._set_trainable(model, head_only=False)
    assert len(model.trainable_weights) == trainable


@pytest.mark.parametrize("frozen, epochs, resumed", [
    (1, 2, [("begin", None, 10), ("end", 1, 10)]),  # stopped between the phases: phase 1 is not run again
    (2, 3, [("begin", None, 2), ("end", 1, 2), ("begin", None, 10), ("end", 2, 10)]),  # stopped inside phase 1
], ids=["between-phases", "inside-phase-1"])
def test_a_stopped_run_resumes_in_its_phase(lenet_upstream, lenet_file, tmp_path, watch, capsys, frozen, epochs,
                                            resumed):
    first_run = watch(stop_at=1)
    with pytest.raises(Stop):
        train.main(train_args(lenet_file, tmp_path, frozen, epochs))
    after_epoch_0 = first_run[1][2]
    assert fit_callbacks.resume_epoch(str(tmp_path / "lenet5_train" / "backup")) == 1
    second_run = watch()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train.main(train_args(lenet_file, tmp_path, frozen, epochs))
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]  # optimizer states fit
    assert "resuming from the backup of epochs 1..1 at epoch 2/" in capsys.readouterr().out
    assert [(event, epoch, count) for event, epoch, _, count in second_run] == resumed
    assert_same(second_run[0][2], after_epoch_0)
    assert summary["epochs"] == list(range(epochs)) and summary["resumed_from"] == 1
    assert summary["optimizer_steps"] == epochs * 4 and summary["epochs_this_run"] == epochs - 1
    assert [row["epoch"] for row in fit_callbacks.read_log(str(tmp_path / "lenet5_train" / "history.csv"))] == \
        [str(e) for e in range(epochs)]


@pytest.mark.parametrize("values, message", [
    ({"freeze_backbone": 2, "epochs": 2, "weights": "w.pth"},
     "--freeze-backbone must be less than --epochs 2 (N epochs of the classifier alone, then every layer until "
     "--epochs); received 2."),
    ({"freeze_backbone": 1, "epochs": 2}, "--freeze-backbone 1 trains a new classifier on a trained trunk: pass "
                                          "--weights"),
    ({"freeze_backbone": 1, "epochs": 2, "weights": "w.pth", "loop": "custom"},
     "--freeze-backbone needs model.fit"),
    ({"fine_tune_learning_rate": 1e-4}, "received --fine-tune-learning-rate 0.0001 without --freeze-backbone."),
])
def test_freeze_backbone_settings_that_cannot_work_are_refused(values, message):
    with pytest.raises(ValueError) as error:
        TrainConfig(**values)
    assert message in str(error.value)


def test_a_normalization_against_the_checkpoint_is_refused(lenet_upstream, lenet_file, tmp_path):
    with pytest.raises(SystemExit) as error:
        cli.main(["train", *TINY, "--weights", lenet_file, "--normalization", "standardize", "--output",
                  str(tmp_path)])
    assert str(error.value) == (
        "keras-cnn train: error: --normalization standardize differs from the preprocessing the weights of "
        "torchvision:lenet_test (lenet.safetensors) were trained with (mean [0.5], std [0.25]); pass "
        "--normalization auto or checkpoint to use it; received 'standardize'.")
    with pytest.raises(SystemExit, match="--normalization checkpoint takes the mean and std of an upstream "
                                         "checkpoint given with --weights"):
        cli.main(["train", *TINY, "--normalization", "checkpoint", "--output", str(tmp_path)])
