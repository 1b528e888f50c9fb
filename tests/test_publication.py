"""Exports published as one set (issue #18, item 2): staging, the folder lock, roll-forward after a crash, and
``keras-cnn export`` killed at random points or run twice at once into one folder.

The guarantee under test: the visible files of an export folder are always one export's complete set (the
previous one or the new one), never a mixture and never a partly written file; the next export succeeds.
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import keras
import numpy as np
import onnxruntime
import pytest
import tensorflow as tf

import keras_cnn
from keras_cnn import _files, _tflite, export

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(keras_cnn.__file__)))
SET = ["lenet5", "lenet5.labels.txt", "lenet5.onnx", "lenet5.tflite", "lenet5.tflite.json"]
NAMES = {"A": "a0,a1,a2,a3", "B": "b0,b1,b2,b3"}


def visible(folder):
    return sorted(n for n in os.listdir(folder) if not n.startswith(".keras_cnn-publish"))


# ---------------------------------------------------------------- the mechanism, in one process


def test_files_appear_only_when_the_block_ends(tmp_path):
    with _files.publish_together(tmp_path / "out") as publication:
        _files.write_text(tmp_path / "out" / "a.txt", "a")
        with _files.staged_folder(tmp_path / "out" / "m" / "1", root=tmp_path / "out") as folder:
            open(os.path.join(folder, "saved_model.pb"), "w").close()
        _files.write_all({tmp_path / "out" / "b.bin": b"b"})
        assert visible(tmp_path / "out") == [] and len(publication.entries) == 3
    assert visible(tmp_path / "out") == ["a.txt", "b.bin", "m"] and sorted(os.listdir(tmp_path / "out")) == visible(
        tmp_path / "out")  # no lock file or staging folder left
    assert os.listdir(tmp_path / "out" / "m" / "1") == ["saved_model.pb"]


def test_a_failure_inside_the_block_publishes_nothing_and_removes_new_folders(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("old")
    with pytest.raises(RuntimeError, match="late"):
        with _files.publish_together(tmp_path / "out"):
            _files.write_text(tmp_path / "out" / "a.txt", "new")
            raise RuntimeError("late")
    assert os.listdir(tmp_path / "out") == ["a.txt"] and (tmp_path / "out" / "a.txt").read_text() == "old"
    with pytest.raises(RuntimeError):
        with _files.publish_together(tmp_path / "new" / "deeper"):
            raise RuntimeError
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_existing_files_are_checked_under_the_lock_and_name_the_flag(tmp_path):
    (tmp_path / "a.txt").write_text("old")
    with pytest.raises(FileExistsError, match="--overwrite"):
        with _files.publish_together(tmp_path, flag="--overwrite"):
            _files.write_whole(tmp_path / "a.txt", lambda path: None)
    assert (tmp_path / "a.txt").read_text() == "old"


def test_published_files_have_the_modes_of_normal_files(tmp_path):
    old = os.umask(0o027)
    try:
        with _files.publish_together(tmp_path / "out"):
            _files.write_all({tmp_path / "out" / "f": b"x"})
            with _files.staged_folder(tmp_path / "out" / "d"):
                pass
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "out" / "f").st_mode & 0o777 == 0o640
    assert os.stat(tmp_path / "out" / "d").st_mode & 0o777 == 0o750


def test_a_second_job_waits_for_the_lock_or_is_refused(tmp_path, capsys):
    entered, release, order = threading.Event(), threading.Event(), []

    def first():
        with _files.publish_together(tmp_path):
            _files.write_text(tmp_path / "x.txt", "first")
            entered.set()
            release.wait(10)
            order.append("first")

    thread = threading.Thread(target=first)
    thread.start()
    entered.wait(10)
    with pytest.raises(FileExistsError, match=f"pid {os.getpid()}"):
        with _files.publish_together(tmp_path, wait=False):
            pass
    threading.Timer(0.3, release.set).start()
    with _files.publish_together(tmp_path):  # blocks until the first job has published
        order.append("second")
        assert (tmp_path / "x.txt").read_text() == "first"
    thread.join()
    assert order == ["first", "second"] and "waiting for another keras_cnn job" in capsys.readouterr().err


def test_a_waiting_job_recreates_the_folder_a_failed_job_removed(tmp_path):
    entered, release = threading.Event(), threading.Event()

    def failing():
        with pytest.raises(RuntimeError):
            with _files.publish_together(tmp_path / "new"):
                entered.set()
                release.wait(10)
                raise RuntimeError("conversion failed")

    thread = threading.Thread(target=failing)
    thread.start()
    entered.wait(10)
    threading.Timer(0.3, release.set).start()
    with _files.publish_together(tmp_path / "new"):  # waits; the failed job then removes the folder it made
        _files.write_text(tmp_path / "new" / "a.txt", "second")
    thread.join()
    assert os.listdir(tmp_path / "new") == ["a.txt"]


def test_a_job_killed_while_publishing_is_completed_by_the_next(tmp_path, monkeypatch):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text("old")
    (tmp_path / "sm" / "1").mkdir(parents=True)
    (tmp_path / "sm" / "1" / "old.pb").write_text("old")
    replace, moves = os.replace, []

    def dies_after_two(source, target):  # the journal's own rename, then one file: killed mid-publication
        moves.append(target)
        if len(moves) == 3:
            raise KeyboardInterrupt
        replace(source, target)

    monkeypatch.setattr(os, "replace", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        with _files.publish_together(tmp_path):
            for name in ("a.txt", "b.txt"):
                _files.write_text(tmp_path / name, "new")
            with _files.staged_folder(tmp_path / "sm" / "1", overwrite=True, root=tmp_path) as folder:
                open(os.path.join(folder, "new.pb"), "w").close()
    monkeypatch.undo()
    assert [(tmp_path / n).read_text() for n in ("a.txt", "b.txt")] == ["new", "old"]  # the mixture a kill leaves
    with _files.publish_together(tmp_path):  # the next job completes it first
        pass
    assert [(tmp_path / n).read_text() for n in ("a.txt", "b.txt")] == ["new", "new"]
    assert os.listdir(tmp_path / "sm" / "1") == ["new.pb"] and sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt",
                                                                                               "sm"]


def test_export_functions_inside_one_block_publish_together(tmp_path):
    model = keras_cnn.build("lenet5", input_shape=(32, 32, 1), classes=4)
    with pytest.raises(RuntimeError, match="after the exports"):
        with export.publish_together(tmp_path):
            export.to_saved_model(model, tmp_path / "lenet5")
            export.to_onnx(model, tmp_path / "lenet5.onnx")
            raise RuntimeError("after the exports")
    assert os.listdir(tmp_path) == []
    with export.publish_together(tmp_path):
        result = export.to_saved_model(model, tmp_path / "lenet5")
        export.to_onnx(model, tmp_path / "lenet5.onnx")
        assert visible(tmp_path) == [] and result.size_bytes > 0
    assert visible(tmp_path) == ["lenet5", "lenet5.onnx"]


# ---------------------------------------------------------------- keras-cnn export as a process


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """Two LeNet-5s named alike (one export stem) with different weights, and their outputs on one image."""
    folder = tmp_path_factory.mktemp("models")
    image = np.random.default_rng(0).uniform(0, 1, (1, 32, 32, 1)).astype("float32")
    outputs = {}
    for seed, key in enumerate("AB"):
        keras.utils.set_random_seed(seed)
        model = keras_cnn.build("lenet5", input_shape=(32, 32, 1), classes=4)
        (folder / key).mkdir()
        model.save(folder / key / "lenet5.keras")
        outputs[key] = keras.ops.convert_to_numpy(model(image))
    assert np.max(np.abs(outputs["A"] - outputs["B"])) > 1e-3
    return folder, image, outputs


def export_command(models, key, output):
    return [sys.executable, "-m", "keras_cnn.cli", "export", "--from", str(models / key / "lenet5.keras"),
            "--output", str(output), "--format", "savedmodel,tflite,onnx", "--class-names", NAMES[key],
            "--overwrite"]


def start(command):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=ROOT)


def which(folder, image, outputs):
    """The one model ("A" or "B") every visible export file belongs to; fails on a mixture or a partial set."""
    assert visible(folder) == SET and os.listdir(folder / "lenet5") == ["1"]
    owners = set()
    labels = (folder / "lenet5.labels.txt").read_text()
    owners.add({NAMES[k].replace(",", "\n") + "\n": k for k in NAMES}[labels])
    sidecar = json.loads((folder / "lenet5.tflite.json").read_text())
    owners.add({NAMES[k]: k for k in NAMES}[",".join(sidecar["class_names"])])
    interpreter, _ = _tflite.interpreter(str(folder / "lenet5.tflite"))
    session = onnxruntime.InferenceSession(str(folder / "lenet5.onnx"), providers=["CPUExecutionProvider"])
    signature = tf.saved_model.load(str(folder / "lenet5" / "1")).signatures["serving_default"]
    for got in (_tflite.predict(interpreter, image), session.run(None, {"image": image})[0],
                next(iter(signature(image=tf.constant(image)).values())).numpy()):
        owners.update(k for k, expected in outputs.items() if np.allclose(got, expected, atol=1e-4))
    assert len(owners) == 1, f"a mixture of exports: {owners}"
    return owners.pop()


def test_export_killed_at_random_points_leaves_one_complete_export(two_models, tmp_path):
    models, image, outputs = two_models
    out = tmp_path / "out"
    assert subprocess.run(export_command(models, "A", out), capture_output=True, env={
        **os.environ, "PYTHONPATH": ROOT}).returncode == 0
    current, rng, killed = "A", random.Random(18), 0
    for attempt in range(20):
        new = "B" if current == "A" else "A"
        process = start(export_command(models, new, out))
        for line in process.stdout:  # conversion has begun
            if line.startswith("[1/"):
                break
        time.sleep(rng.uniform(0, 2.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.communicate()
        state = which(out, image, outputs)
        assert state in (current, new), attempt
        current = state
    assert killed >= 10  # most attempts died mid-conversion
    final = "B" if current == "A" else "A"
    result = subprocess.run(export_command(models, final, out), capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 0, result.stdout + result.stderr
    assert which(out, image, outputs) == final and sorted(os.listdir(out)) == SET  # leftovers cleaned


def test_two_exports_into_one_folder_started_together_never_mix(two_models, tmp_path):
    models, image, outputs = two_models
    waited = 0
    for attempt in range(10):
        out = tmp_path / f"out{attempt}"
        processes = [start(export_command(models, key, out)) for key in "AB"]
        logs = [p.communicate()[0] for p in processes]
        assert [p.returncode for p in processes] == [0, 0], logs
        waited += any("waiting for another keras_cnn job" in log for log in logs)
        assert which(out, image, outputs) in "AB" and sorted(os.listdir(out)) == SET
    assert waited >= 5  # usually one export waits for the other; the guarantee holds either way
