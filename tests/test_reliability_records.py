"""Issue #18 (items 3, 9, 10, 12): records checked against their model and field by field, damaged files named,
diverged training and Ctrl-C stopped cleanly, unwritable output folders and exhausted memory as one line.

* a preprocessing record that does not fit the model (classes, channels, input size) is refused by predict,
  evaluate and export, naming both files;
* a record that is truncated, incomplete, or has a field of the wrong type or range (std 0, NaN) is refused when
  loaded, naming the file and the field; a truncated or corrupt ``.keras`` file says so;
* ``ClassificationMetrics`` logs NaN when the model predicts NaN, so ``model.fit`` returns; the train app
  refuses to save a diverged model;
* an output folder that is not a folder, read-only or too long is refused before the long work; running out of
  memory names the sizes to lower; Ctrl-C during training says where the backup is (exit status 130).
"""

import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_cnn
from keras_cnn import cli
from keras_cnn import metrics as m
from keras_cnn.app import convert_weights, evaluate, export, predict, preprocessing, runners, train
from keras_cnn.callbacks import ClassificationMetrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(keras_cnn.__file__)))
LENET = ["--model", "lenet5", "--option", "pool=max", "--option", "activation=relu"]


def cli_error(argv):
    """The one line ``keras-cnn ARGV`` exits with (a traceback fails the test)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert isinstance(exit_info.value.code, str), exit_info.value.code
    assert "\n" not in exit_info.value.code
    return exit_info.value.code


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """``tiny.keras`` (LeNet-5, 32x32x1, 3 classes), its record beside it and a folder of two PNGs."""
    folder = tmp_path_factory.mktemp("tiny")
    model = keras_cnn.build("lenet5", input_shape=(32, 32, 1), classes=3, name="tiny")
    model.save(folder / "tiny.keras")
    preprocessing.save(preprocessing.create((32, 32, 1), ["a", "b", "c"]), folder / "tiny.preprocessing.json")
    os.makedirs(folder / "images")
    for index in range(2):
        pixels = tf.cast(tf.random.stateless_uniform((32, 32, 1), (index, 0)) * 255, tf.uint8)
        tf.io.write_file(str(folder / "images" / f"{index}.png"), tf.io.encode_png(pixels))
    return folder


def other_record(path, shape=(32, 32, 1), classes=3, **fields):
    """A record for another model (``shape``, ``classes``), with ``fields`` of its JSON replaced."""
    record = preprocessing.create(shape, [f"class{i}" for i in range(classes)])
    values = {**record.to_json(), **fields}
    path.write_text(json.dumps(values, indent=2))
    return str(path)


# ---------------------------------------------------------------- item 3: the record must fit the model


@pytest.mark.parametrize("shape, classes, fragments", [
    ((32, 32, 1), 5, ["5 class names", "outputs 3 classes"]),
    ((32, 32, 3), 3, ["channels 3", "takes 1"]),
    ((28, 28, 1), 3, ["input_size 28x28", "takes 32x32"]),
], ids=["classes", "channels", "size"])
def test_predict_and_evaluate_refuse_a_record_of_another_model(tiny, tmp_path, shape, classes, fragments):
    record = other_record(tmp_path / "other.preprocessing.json", shape, classes)
    model = str(tiny / "tiny.keras")
    for run in (lambda: predict.main(["--model", model, "--preprocessing", record, str(tiny / "images")]),
                lambda: evaluate.main(["--model", model, "--preprocessing", record, "--data", "digits",
                                       "--plots", "none", "--report", "none"])):
        with pytest.raises(ValueError) as error:
            run()
        for fragment in (repr(record), repr(model), "does not fit", *fragments):
            assert fragment in str(error.value)


def test_an_export_is_checked_by_running_it(tiny, tmp_path):
    """An ONNX file tells its class count only when run: a record with 4 classes beside a 3-class export."""
    from keras_cnn import export as exporter

    path = tmp_path / "tiny.onnx"
    exporter.to_onnx(keras.saving.load_model(tiny / "tiny.keras"), str(path))
    other_record(tmp_path / "tiny.preprocessing.json", classes=4)
    with pytest.raises(ValueError, match=r"tiny.preprocessing.json' does not fit the model .*tiny.onnx'.*4 class "
                                         r"names \(the model outputs 3 classes\)"):
        predict.main(["--model", str(path), str(tiny / "images")])


def test_export_from_refuses_a_preprocessing_record_of_another_model(tiny, tmp_path):
    record = other_record(tmp_path / "other.preprocessing.json", (32, 32, 1), 10)
    line = cli_error(["export", "--from", str(tiny / "tiny.keras"), "--preprocessing", record, "--format", "onnx",
                      "--output", str(tmp_path / "out")])
    assert repr(record) in line and repr(str(tiny / "tiny.keras")) in line and "10 class names" in line
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- items 10 and 12: records checked field by field


@pytest.mark.parametrize("fields, fragments", [
    ({"std": [0.0]}, ["field std[0] must be a finite number > 0; received 0.0"]),
    ({"mean": [float("nan")]}, ["field mean[0] must be a finite number; received nan"]),
    ({"std": [1.0, 1.0]}, ["field std must be a list of 1 values"]),
    ({"input_size": [32, "32"]}, ["field input_size[1] must be an integer >= 1; received '32'"]),
    ({"resize": [16, 16]}, ["field resize must be at least input_size [32, 32]"]),
    ({"channels": 0}, ["field channels must be an integer >= 1; received 0"]),
    ({"class_names": []}, ["field class_names must be a non-empty list of strings"]),
    ({"normalization": "magic"}, ["field normalization must be one of"]),
], ids=["std-zero", "mean-nan", "std-length", "size-type", "resize", "channels", "classes", "normalization"])
def test_a_record_with_a_bad_field_is_refused_naming_file_and_field(tmp_path, fields, fragments):
    path = other_record(tmp_path / "bad.preprocessing.json", **fields)
    with pytest.raises(ValueError) as error:
        preprocessing.load(path)
    for fragment in (repr(path), "not a valid preprocessing record", *fragments):
        assert fragment in str(error.value)


def test_a_record_with_std_zero_is_one_line_in_export_and_predict(tiny, tmp_path):
    record = other_record(tmp_path / "zero.preprocessing.json", std=[0.0])
    model = str(tiny / "tiny.keras")
    for argv in (["export", "--from", model, "--preprocessing", record, "--format", "tflite", "--output",
                  str(tmp_path / "out")],
                 ["predict", "--model", model, "--preprocessing", record, str(tiny / "images")]):
        assert "std[0] must be a finite number > 0; received 0.0" in cli_error(argv)


def test_a_truncated_or_incomplete_record_names_the_file_and_what_is_wrong(tmp_path):
    whole = other_record(tmp_path / "whole.preprocessing.json")
    text = open(whole).read()
    truncated = tmp_path / "truncated.preprocessing.json"
    truncated.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"truncated.preprocessing.json' is not a readable preprocessing record "
                                         r"\(truncated or corrupt: invalid JSON at line \d+, column \d+"):
        preprocessing.load(truncated)
    values = json.loads(text)
    for name in ("channels", "mean"):
        del values[name]
    incomplete = tmp_path / "incomplete.preprocessing.json"
    incomplete.write_text(json.dumps(values))
    with pytest.raises(ValueError, match=r"incomplete.preprocessing.json' is not a complete preprocessing record: "
                                         r"missing field\(s\) channels, mean"):
        preprocessing.load(incomplete)
    listed = tmp_path / "list.preprocessing.json"
    listed.write_text("[1, 2]")
    with pytest.raises(ValueError, match="it must hold a JSON object; received a list"):
        preprocessing.load(listed)


def damaged_weights(path):
    """The .keras archive at ``path`` whole, but its model.weights.h5 without the HDF5 signature."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["model.weights.h5"] = b"\0" * 8 + members["model.weights.h5"][8:]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("damage", ["half", "empty", "crc", "weights"])
def test_a_truncated_or_corrupt_keras_file_says_so(tiny, tmp_path, damage):
    data = (tiny / "tiny.keras").read_bytes()
    damaged = {"half": lambda: data[: len(data) // 2], "empty": lambda: b"",
               "crc": lambda: data[:200] + b"\0" * 100 + data[300:],  # inside config.json: a CRC mismatch
               "weights": lambda: damaged_weights(tiny / "tiny.keras")}[damage]()
    path = tmp_path / "tiny.keras"
    path.write_bytes(damaged)
    expected = f"{str(path)!r} is not a readable .keras file (truncated or corrupt: "
    assert expected in cli_error(["predict", "--model", str(path), str(tiny / "images")])
    assert expected in cli_error(["export", "--from", str(path), "--format", "onnx", "--output",
                                  str(tmp_path / "out")])


# ---------------------------------------------------------------- item 9: diverged training stops cleanly


def nan_model():
    model = keras_cnn.build("lenet5", input_shape=(32, 32, 1), classes=3)
    model.set_weights([np.full(w.shape, np.nan, w.dtype) for w in model.get_weights()])
    model.compile("sgd", "sparse_categorical_crossentropy")
    return model


def test_classification_metrics_logs_nan_and_fit_returns_when_training_diverges(tmp_path):
    x = np.random.default_rng(0).random((12, 32, 32, 1), dtype="float32")
    y = np.arange(12) % 3
    metrics_callback = ClassificationMetrics((x, y), plot_dir=tmp_path / "plots", plot_every_n_epochs=1,
                                             per_class=True, class_names=["a", "b", "c"])
    with pytest.warns(RuntimeWarning) as caught:
        history = nan_model().fit(x, y, epochs=3, batch_size=4, verbose=0,
                                  callbacks=[metrics_callback, keras.callbacks.TerminateOnNaN()])
    diverged = "ClassificationMetrics: the model predicts NaN or infinite scores (training diverged); "
    assert [str(w.message) for w in caught] == [f"{diverged}epoch 1: its metrics are NaN and no plots",
                                                f"{diverged}no final plots in {tmp_path / 'plots'}"]
    assert isinstance(history, keras.callbacks.History) and history.epoch == [0]  # TerminateOnNaN stopped it
    keys = {k for k in history.history if k.startswith("val_")}
    assert {"val_pr_auc_macro", "val_roc_auc_micro", "val_f1_macro", "val_f1_a"} <= keys
    assert all(np.isnan(history.history[k][0]) for k in keys)
    assert not (tmp_path / "plots").exists()  # no curves of NaN scores, at the epoch or at the end


def test_metric_functions_still_refuse_non_finite_scores():
    with pytest.raises(ValueError, match="y_score must be finite"):
        m.classification_summary([0, 1, 2], np.full((3, 3), np.nan), task="multiclass")


@pytest.mark.filterwarnings("ignore:ClassificationMetrics:RuntimeWarning")
def test_train_refuses_to_save_a_diverged_model(tmp_path, monkeypatch):
    build = train._build

    def diverged(*args):
        model = build(*args)
        model.set_weights([np.full(w.shape, np.nan, w.dtype) for w in model.get_weights()])
        return model

    monkeypatch.setattr(train, "_build", diverged)
    line = cli_error(["train", *LENET, "--epochs", "2", "--limit", "40", "--output", str(tmp_path), "--verbose",
                      "0"])
    assert line.startswith("keras-cnn train: error: training lenet5 diverged (the loss became NaN or infinite in "
                           "epoch 1)") and "lower --learning-rate (received 0.003)" in line
    assert not (tmp_path / "lenet5.keras").exists()


# ---------------------------------------------------------------- item 10: output folders refused before the work


def reached_the_long_work(*args, **kwargs):
    raise AssertionError("the output folder was not checked before the long work")


COMMANDS = {
    "train": (["train", *LENET, "--epochs", "1"], (train, "_first_build")),
    "export": (["export", "--model", "lenet5", "--format", "onnx"], (export, "_load_model")),
    "convert-weights": (["convert-weights", "--model", "lenet5", "--from", "lenet.pth"],
                        (convert_weights, "_convert")),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("problem", ["not-a-folder", "too-long", "read-only"])
def test_an_output_folder_that_cannot_be_written_is_one_line_before_the_work(command, problem, tmp_path,
                                                                             monkeypatch):
    argv, (module, slow) = COMMANDS[command]
    monkeypatch.setattr(module, slow, reached_the_long_work)
    if problem == "not-a-folder":
        (tmp_path / "file").write_text("a file")
        output, fragments = tmp_path / "file" / "out", ["'" + str(tmp_path / "file") + "' exists and is not a "
                                                                                       "folder"]
    elif problem == "too-long":
        output, fragments = tmp_path / ("n" * 300), ["is too long (300 bytes; this file system allows 255 per "
                                                     "name)"]
    else:
        os.makedirs(tmp_path / "locked")
        os.chmod(tmp_path / "locked", 0o555)
        if os.geteuid() == 0:  # root writes into a 0555 folder: deny as a read-only file system would
            access = os.access
            monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if os.fspath(path).startswith(
                str(tmp_path / "locked")) and mode & os.W_OK else access(path, mode, **kw))
        output, fragments = tmp_path / "locked" / "out", ["cannot create it in", "permission denied"]
    line = cli_error([*argv, "--output", str(output)])
    assert line.startswith(f"keras-cnn {command}: error: --output ") and "[Errno" not in line
    for fragment in fragments:
        assert fragment in line


def test_an_os_error_about_a_path_is_one_line_without_errno(monkeypatch):
    def fail(args):
        raise OSError(errno.ENAMETOOLONG, "File name too long", "/out/" + "n" * 20)

    monkeypatch.setattr(predict, "run", fail)
    assert cli_error(["predict", "--model", "m.keras", "x.png"]) == \
        f"keras-cnn predict: error: File name too long: '/out/{'n' * 20}'"


# ---------------------------------------------------------------- item 10: memory, as one line


def exhausted(*args, **kwargs):
    raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[64,6,224,224]\n"
                                                       "Hint: more lines TensorFlow adds")


def out_of_memory(*args):
    raise MemoryError()


def test_running_out_of_memory_says_what_to_lower(tiny, monkeypatch):
    load = runners.load

    def load_exhausting(path, batch_size=64):
        runner = load(path, batch_size)
        return runners.Runner(exhausted, runner.input_shape, runner.kind, runner.path, runner.model)

    monkeypatch.setattr(runners, "load", load_exhausting)
    line = cli_error(["predict", "--model", str(tiny / "tiny.keras"), "--batch-size", "2", str(tiny / "images")])
    assert line == ("keras-cnn predict: error: out of memory predicting batches of 2 images of 32x32x1 "
                    "(ResourceExhaustedError: OOM when allocating tensor with shape[64,6,224,224]); lower "
                    "--batch-size.")
    monkeypatch.setattr(evaluate, "_data", out_of_memory)
    line = cli_error(["evaluate", "--model", str(tiny / "tiny.keras"), "--data", "digits", "--batch-size", "8"])
    assert "out of memory evaluating 32x32x1 images in batches of 8 (MemoryError" in line and "--limit" in line


def test_running_out_of_memory_in_training_names_input_and_batch_size(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "_fit", exhausted)
    line = cli_error(["train", *LENET, "--image-size", "40", "--batch-size", "16", "--epochs", "1", "--limit", "20",
                      "--output", str(tmp_path)])
    assert line.startswith("keras-cnn train: error: out of memory training lenet5 on 40x40x1 inputs in batches "
                           "of 16 (ResourceExhaustedError: OOM when allocating") and \
        line.endswith("lower --batch-size or --image-size.")


# ---------------------------------------------------------------- item 10: Ctrl-C during training


def test_ctrl_c_during_training_says_where_the_backup_is_and_how_to_resume(tmp_path):
    argv = ["train", *LENET, "--epochs", "100000", "--limit", "100", "--output", str(tmp_path), "--verbose", "2"]
    out, backup = tmp_path / "stdout.txt", tmp_path / "lenet5_train" / "backup"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT, "PYTHONUNBUFFERED": "1"}
    with open(out, "w") as stdout:
        process = subprocess.Popen([sys.executable, "-m", "keras_cnn.cli", *argv], stdout=stdout,
                                   stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        deadline = time.time() + 300  # generous: CI runs this beside other tests on 2 cores
        while time.time() < deadline and process.poll() is None and not (
                "val_accuracy" in out.read_text() and (backup / "training_metadata.json").is_file()):
            time.sleep(0.05)  # the line Keras prints when the first epoch ends, and the backup it made
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=180)
        finally:
            process.kill()  # no-op once it has exited; never leave a 100000-epoch run behind
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("keras-cnn train: interrupted; the backup of the first ") and \
        f"epoch(s) is in {backup}; the same command resumes from it; resume with: keras-cnn train --model " \
        f"lenet5" in last and last.endswith("--verbose 2")
    assert (backup / "training_metadata.json").is_file()


def test_ctrl_c_in_fit_is_raised_at_the_next_batch_end_and_twice_at_once():
    """A SIGINT that lands inside a finaliser or a tf.data callback would be lost ("Exception ignored"); the train
    command's callback holds it until the batch ends, and a second one interrupts at once."""
    from keras_cnn.app.fit_callbacks import InterruptBetweenBatches

    default = signal.getsignal(signal.SIGINT)
    callback = InterruptBetweenBatches()
    callback.on_train_begin()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # delivered: held, not raised
        with pytest.raises(KeyboardInterrupt):
            callback.on_train_batch_end(0)
        assert signal.getsignal(signal.SIGINT) is default
        callback.on_train_begin()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
    finally:
        callback.restore()
    assert signal.getsignal(signal.SIGINT) is default
