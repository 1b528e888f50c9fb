"""The apps: keras-cnn train / evaluate / predict / export on real digits, data sources, recipes, resume after
SIGKILL, MirroredStrategy on two logical CPUs and MultiWorkerMirroredStrategy with two local worker processes."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_cnn import cli, data
from keras_cnn.app import augment, fit_callbacks, preprocessing, recipes, sources
from tests.local_cluster import worker_envs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENET = ["--model", "lenet5", "--option", "pool=max", "--option", "activation=relu"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
TRAINED_GROUP = pytest.mark.xdist_group("trained_lenet5")  # one worker trains the shared model once


def command(args):
    """``keras-cnn ARGS`` as a fresh process (strategies fix the devices when TensorFlow starts)."""
    return [sys.executable, "-m", "keras_cnn.cli", *args]


def write_pngs(folder, images, labels, names=None):
    """One PNG per image under ``folder/<class>/`` (8-bit, like files users have)."""
    for index, (image, label) in enumerate(zip(images, labels)):
        os.makedirs(os.path.join(folder, str(names[label] if names else label)), exist_ok=True)
        pixels = tf.cast(tf.round(image * 255), tf.uint8)
        tf.io.write_file(os.path.join(folder, str(names[label] if names else label), f"{index:03d}.png"),
                         tf.io.encode_png(pixels))


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


# ---------------------------------------------------------------- flags and errors


@pytest.mark.parametrize("name", cli.COMMANDS)
def test_help_documents_every_flag(name, capsys):
    parser = cli.command(name).parser()
    undocumented = [a.option_strings or a.dest for a in parser._actions if not a.help]
    assert not undocumented
    with pytest.raises(SystemExit) as exit_info:
        cli.main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(option in out for a in parser._actions for option in a.option_strings)


# ---------------------------------------------------------------- data sources


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    """24 real digits as PNGs in three class folders, plus a corrupt PNG and a text file."""
    folder = tmp_path_factory.mktemp("digit_folder")
    x, y, _ = data.load_images("digits", image_size=(32, 32), channels=1, split="train")
    keep = np.concatenate([np.flatnonzero(y == k)[:8] for k in (0, 1, 7)])
    write_pngs(folder, x[keep], np.searchsorted([0, 1, 7], y[keep]), names=["zero", "one", "seven"])
    (folder / "one" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG")
    (folder / "seven" / "notes.txt").write_text("not an image")
    return folder


def test_folder_source_skips_and_counts_unreadable_files(digit_folder):
    source = sources.parse(f"folder:{digit_folder}", val_fraction=0.25, test_fraction=0.25)
    with pytest.warns(UserWarning, match="skipped 1 unreadable or corrupt file"):  # notes.txt is no image
        splits = sources.load(source, ("train", "val", "test", "all"), size=(32, 32), channels=3)
    assert {role: s.count for role, s in splits.items()} == {"train": 12, "val": 6, "test": 6, "all": 24}
    assert splits["all"].skipped == 1 and splits["train"].class_names == ("one", "seven", "zero")
    images, labels = zip(*[(x.numpy(), int(y)) for x, y in splits["test"].dataset])
    assert np.stack(images).shape == (6, 32, 32, 3) and 0.0 <= np.min(images) and np.max(images) <= 1.0
    assert sorted(labels) == [0, 0, 1, 1, 2, 2]  # stratified: two of each class
    train_files = {x.numpy().tobytes() for x, _ in splits["train"].dataset}
    assert not train_files & {x.tobytes() for x in images}


def test_train_on_a_folder_reports_the_skipped_files(digit_folder, tmp_path, capsys):
    from keras_cnn.app import train

    with pytest.warns(UserWarning, match="skipped 1"):
        summary = train.main([*LENET, "--data", f"folder:{digit_folder}", "--epochs", "1", "--batch-size", "4",
                              "--output", str(tmp_path)])
    assert f"3 classes, 1 unreadable file(s) skipped: {digit_folder / 'one' / 'broken.png'} (not a" \
        in capsys.readouterr().out
    record = preprocessing.load(tmp_path / "lenet5.preprocessing.json")
    assert record.class_names == ("one", "seven", "zero") and summary["test_images"] == 5


def test_tfds_dataset_that_is_not_there_is_a_clear_message(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--data", "tfds:mnist", "--data-dir", str(tmp_path), "--output", str(tmp_path)])
    message = str(exit_info.value)
    assert message.startswith("keras-cnn train: error: tensorflow-datasets 'mnist' (split 'train') is not "
                              f"prepared in data_dir={str(tmp_path)!r} (--download")
    assert "Traceback" not in message


def test_tfds_source_splits_validation_off_the_training_split():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=50):  # tfds's own offline stand-in for the prepared files
        splits = sources.load(sources.parse("tfds:mnist", val_fraction=0.2), ("train", "val", "test"),
                              size=(16, 16), channels=3)
        first = next(iter(splits["test"].dataset))
    assert {r: s.count for r, s in splits.items()} == {"train": 40, "val": 10, "test": 50}
    assert splits["train"].class_names[:3] == ("0", "1", "2") and first[0].shape == (16, 16, 3)


# ---------------------------------------------------------------- preprocessing, recipes, callbacks


def test_preprocessing_record_round_trip_and_byte_level_transform(tmp_path):
    images = np.random.default_rng(0).uniform(0, 1, (20, 8, 8, 3)).astype("float32")
    record = preprocessing.create((6, 6, 3), "abc", normalization="standardize", images=images, resize=(8, 8))
    path = preprocessing.save(record, tmp_path / "m.preprocessing.json")
    assert preprocessing.load(path) == record
    x = record.prepare(images[:2]).numpy()
    assert x.shape == (2, 6, 6, 3)
    np.testing.assert_allclose(x, (images[:2, 1:7, 1:7] - record.mean) / record.std, rtol=1e-5, atol=1e-5)
    transform = record.pixel_transform()  # what the TFLite sidecar tells apps that feed 8-bit pixels
    pixels = np.round(images[:2, 1:7, 1:7] * 255)
    np.testing.assert_allclose(pixels * transform["scale"] + transform["offset"],
                               (pixels / 255 - record.mean) / record.std, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("path, record", [
    ("out/lenet5.keras", "out/lenet5.preprocessing.json"),
    ("out/lenet5.int8.tflite", "out/lenet5.preprocessing.json"),
    ("out/lenet5.onnx", "out/lenet5.preprocessing.json"),
])
def test_exports_share_the_record_of_their_model(path, record):
    assert preprocessing.record_path(path) == record


def test_saved_model_version_folder_finds_the_record(tmp_path):
    (tmp_path / "lenet5" / "3").mkdir(parents=True)
    assert preprocessing.record_path(tmp_path / "lenet5" / "3") == str(tmp_path / "lenet5.preprocessing.json")


def test_augmentation_crops_flips_and_adds_pca_noise_along_the_principal_component():
    rng = np.random.default_rng(0)
    colours = rng.normal(0, 1, (4000, 1)) * np.array([[0.3, 0.2, 0.1]]) + 0.5  # one dominant colour direction
    images = colours.reshape(10, 20, 20, 3).astype("float32")
    recipe = augment.Recipe(crop=True, flip=True, pca_noise=0.1).with_pca(images)
    values, vectors = recipe.pca
    np.testing.assert_allclose(np.abs(vectors[:, -1]), np.array([3, 2, 1]) / np.sqrt(14), atol=0.02)
    fn = augment.per_image(recipe, (16, 16))
    out = [fn(tf.constant(images[0]), tf.constant([s, 1], tf.int64)).numpy() for s in range(12)]
    assert out[0].shape == (16, 16, 3)
    shifts = np.stack([o.mean(axis=(0, 1)) for o in out]) - images[0].mean(axis=(0, 1))
    direction = shifts / np.linalg.norm(shifts, axis=1, keepdims=True)
    assert np.all(np.abs(direction @ vectors[:, -1]) > 0.9)  # the noise moves colours along p1
    flipped = augment.per_image(augment.Recipe(flip=True), (20, 20))
    views = {flipped(tf.constant(images[0]), tf.constant([s, 0], tf.int64)).numpy().tobytes() for s in range(8)}
    assert views == {images[0].tobytes(), images[0][:, ::-1].tobytes()}


def test_scale_jitter_draws_sides_in_range_then_crops():
    recipe = augment.Recipe(scale_jitter=(20, 40))
    fn = augment.per_image(recipe, (16, 16))
    image = tf.constant(np.random.default_rng(1).uniform(0, 1, (40, 40, 1)).astype("float32"))
    crops = [fn(image, tf.constant([s, 2], tf.int64)).numpy() for s in range(6)]
    assert all(c.shape == (16, 16, 1) for c in crops) and len({c.tobytes() for c in crops}) == 6


@pytest.mark.parametrize("name, at_steps", [
    ("step", {0: 0.1, 29: 0.1, 30: 0.01, 60: 0.001}),
    ("exponential", {0: 0.1, 19: 0.1, 20: 0.094, 40: 0.1 * 0.94 ** 2}),
    ("cosine", {0: 0.1, 45: 0.05, 90: 0.0}),
])
def test_learning_rate_schedules_count_epochs(name, at_steps):
    rate = recipes.learning_rate(recipes.Schedule(name, 0.1, step_epochs=3, decay_epochs=2.0), 10, 9)
    for step, expected in at_steps.items():
        assert float(rate(step)) == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_sgd_recipe_has_momentum_and_weight_decay():
    sgd = recipes.optimizer("sgd", 0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
    assert (sgd.momentum, sgd.weight_decay, sgd.nesterov) == (0.9, 5e-4, True)
    with pytest.raises(ValueError, match="--optimizer must be one of 'sgd', 'adam', 'adamw', 'rmsprop'; received"):
        recipes.optimizer("adagrad", 0.01)


def test_resume_log_keeps_only_epochs_the_backup_holds(tmp_path):
    log = tmp_path / "history.csv"
    log.write_text("epoch,val_pr_auc_macro,val_loss\n0,0.5,1.0\n1,0.7,0.8\n2,0.6,0.9\n")
    kept = fit_callbacks.trim_log(str(log), 2)  # killed after logging epoch 2, before backing it up
    assert [r["epoch"] for r in read_csv(log)] == ["0", "1"] == [r["epoch"] for r in kept]
    assert fit_callbacks.best_logged(kept, "val_pr_auc_macro") == 0.7  # a maximised AUC, not Keras's "auto" min
    assert fit_callbacks.best_logged(kept, "val_loss") == 0.8
    fit_callbacks.trim_log(str(log), 0)
    assert not log.exists()


# ---------------------------------------------------------------- train -> evaluate -> export -> predict


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Three epochs of LeNet-5 on the 1,078 real training digits; returns the output folder and the summary."""
    from keras_cnn.app import train

    folder = tmp_path_factory.mktemp("trained")
    summary = train.main([*LENET, "--epochs", "3", "--output", str(folder)])
    return folder, summary


@TRAINED_GROUP
def test_train_writes_the_model_its_record_and_run_files(trained):
    folder, summary = trained
    assert summary["test_accuracy"] > 0.8  # three epochs of real learning: far above the 0.1 of chance
    assert summary["epochs"] == [0, 1, 2] and summary["optimizer_steps"] == 3 * 34  # ceil(1078 / 32) per epoch
    rows = read_csv(folder / "lenet5_train" / "history.csv")
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert {"val_pr_auc_macro", "val_roc_auc_macro", "val_f1_macro"} <= set(rows[0])  # exact metrics callback
    # --monitor accepts exactly the keys the run logs (TensorBoard's learning_rate is no metric).
    assert set(rows[0]) - {"epoch", "learning_rate"} == set(fit_callbacks.monitors(["predictions"]))
    for row in rows:  # on one label per image, micro F1 is accuracy: the callback saw the right predictions
        assert float(row["val_f1_micro"]) == pytest.approx(float(row["val_accuracy"]), abs=1e-6)
    record = preprocessing.load(folder / "lenet5.preprocessing.json")
    assert record.data["source"] == "digits" and record.class_names == tuple("0123456789")
    assert (folder / "lenet5_train" / "best.weights.h5").is_file()
    assert not (folder / "lenet5_train" / "backup").exists()  # deleted once training completed
    assert os.listdir(folder / "lenet5_train" / "tensorboard")


@TRAINED_GROUP
def test_evaluate_prints_a_table_writes_plots_and_the_report(trained, capsys):
    from keras_cnn import metrics
    from keras_cnn.app import evaluate

    folder, summary = trained
    values = evaluate.main(["--model", str(folder / "lenet5.keras")])
    report = json.loads((folder / "lenet5.report.json").read_text())
    assert report["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-9)  # same test split, same model
    assert {"accuracy", "f1_macro", "f1_micro", "pr_auc_macro", "roc_auc_macro"} <= set(report)
    assert np.sum(report["confusion_matrix"]) == report["evaluation"]["images"] == 360
    assert sorted(os.listdir(folder / "lenet5_plots")) == ["test_confusion_matrix.png", "test_pr_curve.png",
                                                          "test_roc_curve.png"]
    out = capsys.readouterr().out
    assert "on digits (test, 360 images, single evaluation)" in out and f"{values['pr_auc_macro']:.4f}" in out
    import keras

    model = keras.saving.load_model(folder / "lenet5.keras")  # recompute from the model: the exact values
    record = preprocessing.load(folder / "lenet5.preprocessing.json")
    x, y = data.digits(image_size=record.resize)["test"]
    scores = model.predict(record.prepare(x).numpy(), verbose=0)
    assert report["pr_auc_macro"] == pytest.approx(metrics.pr_auc(y, scores, task="multiclass"), abs=1e-6)
    assert report["roc_auc_macro"] == pytest.approx(metrics.roc_auc(y, scores, task="multiclass"), abs=1e-6)


@TRAINED_GROUP
def test_multi_crop_and_dense_evaluation_run_on_the_keras_model(trained):
    from keras_cnn.app import evaluate

    folder, _ = trained
    common = ["--model", str(folder / "lenet5.keras"), "--limit", "20", "--report", "none", "--plots", "none"]
    single = evaluate.main(common)
    dense = evaluate.main([*common, "--mode", "dense", "--no-flip"])
    crops = evaluate.main([*common, "--mode", "multi-crop", "--crops", "1"])
    # At the model's own size the FCN has one position and the one crop is the whole image: same scores.
    assert dense["accuracy"] == single["accuracy"] == crops["accuracy"]
    assert dense["roc_auc_macro"] == pytest.approx(single["roc_auc_macro"], abs=1e-6)


@TRAINED_GROUP
def test_export_then_predict_with_every_runtime(trained, tmp_path, capsys):
    from keras_cnn.app import export, predict

    folder, _ = trained
    results = export.main(["--from", str(folder / "lenet5.keras"), "--format", "savedmodel,tflite,onnx",
                           "--quantization", "none,int8", "--samples", "64", "--output", str(tmp_path),
                           "--report", str(tmp_path / "lenet5.report.json")])
    assert sorted(os.listdir(tmp_path)) == ["lenet5", "lenet5.int8.labels.txt", "lenet5.int8.onnx",
                                            "lenet5.int8.tflite", "lenet5.int8.tflite.json", "lenet5.labels.txt",
                                            "lenet5.onnx", "lenet5.preprocessing.json", "lenet5.report.json",
                                            "lenet5.tflite", "lenet5.tflite.json"]
    exports = json.loads((tmp_path / "lenet5.report.json").read_text())["exports"]
    assert set(exports) == {"savedmodel", "tflite", "tflite_int8", "onnx", "onnx_int8"} and len(results) == 5
    for key in ("savedmodel", "tflite", "onnx"):
        assert exports[key]["test_top1_agreement"] == 1.0 and exports[key]["test_max_abs_diff"] < 1e-4
    for key in ("tflite_int8", "onnx_int8"):
        assert exports[key]["test_images"] == 360 and exports[key]["test_top1_agreement"] > 0.9
    x, y, _ = data.load_images("digits", image_size=(32, 32), channels=1, split="test", limit=12)
    images = tmp_path / "images"
    write_pngs(images, x, y)
    (images / "3" / "corrupt.png").write_bytes(b"not a png")
    reference = predict.main(["--model", str(folder / "lenet5.keras"), "--top-k", "3", str(images)])
    assert len(reference) == 12 and all(len(top) == 3 for top in reference.values())
    assert "skipped 1 unreadable file(s)" in capsys.readouterr().out
    for model in ("lenet5", "lenet5/1", "lenet5.tflite", "lenet5.onnx", "lenet5.int8.tflite", "lenet5.int8.onnx"):
        got = predict.main(["--model", str(tmp_path / model), "--top-k", "1", str(images)])
        agree = np.mean([got[f][0][0] == reference[f][0][0] for f in reference])
        assert agree >= (0.9 if "int8" in model else 1.0), model
    with pytest.raises(ValueError, match="--mode dense needs a .keras model"):
        from keras_cnn.app import evaluate

        evaluate.main(["--model", str(tmp_path / "lenet5.onnx"), "--mode", "dense"])


# ---------------------------------------------------------------- recipes


def test_paper_recipes_train_and_save_a_float32_model(tmp_path):
    import keras

    from keras_cnn.app import train

    summary = train.main([*LENET, "--epochs", "2", "--limit", "96", "--batch-size", "16", "--mixed-precision",
                          "--xla", "--optimizer", "sgd", "--learning-rate", "0.05", "--weight-decay", "5e-4",
                          "--schedule", "step", "--step-epochs", "1", "--label-smoothing", "0.1",
                          "--random-crop", "36", "--flip", "--pca-noise", "0.1", "--normalization", "standardize",
                          "--output", str(tmp_path)])
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after training
    model = keras.saving.load_model(tmp_path / "lenet5.keras")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    record = preprocessing.load(tmp_path / "lenet5.preprocessing.json")
    assert record.resize == (36, 36) and record.input_size == (32, 32) and record.normalization == "standardize"
    assert 0.2 < record.mean[0] < 0.4 and 0.2 < record.std[0] < 0.5  # digits: mostly dark background
    rows = read_csv(tmp_path / "lenet5_train" / "history.csv")
    assert all(np.isfinite(float(r["loss"])) for r in rows) and summary["optimizer_steps"] == 2 * 6


@pytest.mark.filterwarnings("ignore::keras_cnn.metrics.UndefinedMetricWarning")  # 32 images miss a class
def test_auxiliary_heads_train_with_weight_0_3_and_are_dropped_when_saved(tmp_path):
    import keras

    from keras_cnn.app import train

    train.main(["--model", "googlenet", "--option", "aux_logits=True", "--image-size", "32", "--epochs", "1",
                "--limit", "32", "--batch-size", "16", "--optimizer", "sgd", "--learning-rate", "0.01",
                "--output", str(tmp_path)])
    row = read_csv(tmp_path / "googlenet_train" / "history.csv")[0]
    outputs = ["predictions", "aux1_predictions", "aux2_predictions"]
    assert set(row) - {"epoch", "learning_rate"} == set(fit_callbacks.monitors(outputs))
    weighted = float(row["predictions_loss"]) + 0.3 * (float(row["aux1_predictions_loss"]) +
                                                       float(row["aux2_predictions_loss"]))
    assert float(row["loss"]) == pytest.approx(weighted, rel=1e-3)
    assert float(row["val_f1_micro"]) == pytest.approx(float(row["val_predictions_accuracy"]), abs=1e-6)
    model = keras.saving.load_model(tmp_path / "googlenet.keras")
    assert len(model.outputs) == 1 and model.output_shape == (None, 10)


def test_custom_training_loop_matches_the_fit_logs_conventions(tmp_path):
    from keras_cnn.app import train

    summary = train.main([*LENET, "--loop", "custom", "--label-smoothing", "0.1", "--epochs", "2", "--limit", "128",
                          "--batch-size", "16", "--output", str(tmp_path)])
    assert summary["optimizer_steps"] == 2 * 8 and summary["epochs"] == [0, 1]
    rows = read_csv(tmp_path / "lenet5_train" / "history.csv")
    assert set(rows[0]) - {"epoch", "learning_rate"} == set(fit_callbacks.monitors(["predictions"], custom=True))
    for row in rows:
        # The loop's own validation accuracy (one-hot targets) equals the exact callback's micro F1.
        assert float(row["val_accuracy"]) == pytest.approx(float(row["val_f1_micro"]), abs=1e-6)
        assert 0.0 < float(row["accuracy"]) <= 1.0 and np.isfinite(float(row["val_loss"]))


# ---------------------------------------------------------------- resume, strategies (fresh processes)


def test_sigkill_mid_epoch_then_the_same_command_resumes_and_finishes(tmp_path):
    progress = tmp_path / "progress.json"
    argv = command([*LENET, "--epochs", "3", "--batch-size", "8", "--limit", "400", "--output", str(tmp_path),
                    "--progress-file", str(progress)])
    argv.insert(argv.index("--model"), "train")
    log = tmp_path / "lenet5_train" / "history.csv"
    process = subprocess.Popen(argv, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state, deadline = None, time.time() + 240
    while time.time() < deadline and process.poll() is None:
        try:
            state = json.loads(progress.read_text())
        except (OSError, ValueError):
            state = None
        if state and state["epoch"] == 1 and state["batch"] >= 10:  # 10 of the 50 batches of epoch 1 done
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "training ended before it could be killed mid-epoch"
    assert [r["epoch"] for r in read_csv(log)] == ["0"]  # killed inside epoch 1: only epoch 0 is complete
    assert (tmp_path / "lenet5_train" / "backup" / "training_metadata.json").is_file()
    again = subprocess.run(argv, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming from the backup of epochs 1..1 at epoch 2/3" in again.stdout
    rows = read_csv(log)
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]  # each epoch exactly once
    summary = json.loads((tmp_path / "lenet5_train" / "summary.json").read_text())
    assert summary["epochs_this_run"] == 2 and summary["resumed_from"] == 1
    assert summary["optimizer_steps"] == 3 * 50  # the optimizer state (its step count) came back with the backup
    assert float(rows[1]["loss"]) < float(rows[0]["loss"])  # epoch 1 went on from epoch 0's weights
    assert not (tmp_path / "lenet5_train" / "backup").exists()


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    argv = command(["train", *LENET, "--strategy", "mirrored", "--devices", "2", "--epochs", "2", "--limit", "128",
                    "--batch-size", "16", "--output", str(tmp_path)])
    result = subprocess.run(argv, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "mirrored strategy, 2 replica(s), model.fit" in result.stdout
    summary = json.loads((tmp_path / "lenet5_train" / "summary.json").read_text())
    assert summary["replicas"] == 2 and summary["optimizer_steps"] == 2 * 8  # one step per global batch of 16
    for row in read_csv(tmp_path / "lenet5_train" / "history.csv"):  # exact metrics saw each image once
        assert float(row["val_f1_micro"]) == pytest.approx(float(row["val_accuracy"]), abs=1e-6)


def test_multi_worker_training_with_two_local_workers(tmp_path):
    argv = command(["train", *LENET, "--strategy", "multiworker", "--epochs", "2", "--limit", "128",
                    "--batch-size", "16", "--output", str(tmp_path), "--verbose", "2"])
    workers = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for env in worker_envs(ENV, 2)]
    try:
        outputs = [w.communicate(timeout=400) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
        assert "multiworker strategy, 2 replica(s), custom training loop" in out
    fingerprints = [line.rsplit(" ", 1)[-1] for out, _ in outputs for line in out.splitlines()
                    if "last weights" in line]
    assert len(fingerprints) == 2 and fingerprints[0] == fingerprints[1]  # the workers stayed in sync
    summary = json.loads((tmp_path / "lenet5_train" / "summary.json").read_text())
    assert summary["replicas"] == 2 and summary["optimizer_steps"] == 2 * (128 // 16)
    assert [r["epoch"] for r in read_csv(tmp_path / "lenet5_train" / "history.csv")] == ["0", "1"]
    assert (tmp_path / "lenet5.keras").is_file() and summary["test_accuracy"] > 0.2
