"""Issue #21 through the apps: keras-cnn train --task multilabel on the built-in multi-label digits and on a
CSV listing; per-class thresholds chosen on validation, kept in the .keras file, the preprocessing record and
every export; evaluate and predict use them, and predict gives the same label sets from every format."""

import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import f1_score as sk_f1

from keras_cnn import cli, metrics, multilabel, thresholds
from keras_cnn.app import pipeline, preprocessing, sources, train
from keras_cnn.app.train_config import TrainConfig

GROUP = pytest.mark.xdist_group("multilabel_apps")  # one worker trains and exports the shared model once
FORMATS = ("lenet5.keras", "lenet5", "lenet5.tflite", "lenet5.onnx")  # .keras, SavedModel, LiteRT, onnxruntime


def run_cli(*argv):
    cli.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """LeNet-5 with a sigmoid head, 3 epochs on 400 multi-label digits mosaics (the last epoch's weights), exported
    to SavedModel, TFLite and ONNX (float32)."""
    out = tmp_path_factory.mktemp("multilabel")
    config = TrainConfig(model="lenet5", data="multilabel-digits", option=("pool=max", "activation=relu"),
                         epochs=3, limit=400, batch_size=32, output=str(out), final="last", verbose=0)
    summary = train.run(config)
    run_cli("export", "--from", out / "lenet5.keras", "--format", "savedmodel,tflite,onnx", "--output", out)
    record = preprocessing.load(out / "lenet5.preprocessing.json")
    return out, summary, record


def split_arrays(record, role, limit=400):
    part = sources.load(sources.from_json(record.data), (role,), size=record.resize, channels=record.channels,
                        limit=limit)[role]
    return pipeline.arrays(part, record)


@GROUP
def test_train_resolves_the_task_and_monitor_from_the_data(trained):
    out, summary, record = trained
    assert summary["task"] == "multilabel" and summary["monitor"] == "val_f1_micro"
    assert record.task == "multilabel" and record.multilabel
    model = keras.saving.load_model(out / "lenet5.keras", safe_mode=True)
    assert model.layers[-1].get_config()["activation"] == "sigmoid"
    rows = list(csv.DictReader(open(out / "lenet5_train" / "history.csv")))
    assert len(rows) == 3 and all("val_f1_micro" in row for row in rows)


@GROUP
def test_thresholds_are_chosen_on_validation_and_kept_in_model_and_record(trained):
    out, summary, record = trained
    model = keras.saving.load_model(out / "lenet5.keras", safe_mode=True)
    images, labels = split_arrays(record, "val")
    expected = thresholds.choose_thresholds(labels, model.predict(images, verbose=0), rule="f1")
    np.testing.assert_allclose(record.thresholds, expected, atol=1e-6)
    np.testing.assert_allclose(thresholds.attached(model), expected, atol=1e-6)  # survives .keras save/load
    assert summary["thresholds"] == pytest.approx(list(record.thresholds))
    assert not np.allclose(record.thresholds, 0.5)  # chosen, not the default


@GROUP
def test_logged_and_summary_metrics_equal_keras_cnn_metrics_and_scikit_learn(trained):
    out, summary, record = trained
    model = keras.saving.load_model(out / "lenet5.keras", safe_mode=True)  # the last epoch's weights
    images, labels = split_arrays(record, "val")
    scores = model.predict(images, verbose=0)
    last = list(csv.DictReader(open(out / "lenet5_train" / "history.csv")))[-1]
    micro = metrics.f1_score(labels, scores, task="multilabel", average="micro")
    assert float(last["val_f1_micro"]) == pytest.approx(micro, abs=1e-6)
    assert micro == pytest.approx(sk_f1(labels, scores >= 0.5, average="micro", zero_division=0), abs=1e-12)
    test_images, test_labels = split_arrays(record, "test")
    test_scores = model.predict(test_images, verbose=0)
    chosen = np.asarray(record.thresholds)
    assert summary["test_f1_micro"] == pytest.approx(
        sk_f1(test_labels, test_scores >= chosen, average="micro", zero_division=0), abs=1e-9)
    assert summary["test_accuracy"] == pytest.approx(np.mean(((test_scores >= chosen) == test_labels).all(1)))


@GROUP
def test_evaluate_scores_with_the_record_thresholds(trained, capsys):
    out, summary, record = trained
    run_cli("evaluate", "--model", out / "lenet5.onnx", "--limit", 400, "--plots", "none", "--report",
            out / "eval.json")
    report = json.loads((out / "eval.json").read_text())
    assert report["evaluation"]["task"] == "multilabel"
    assert report["evaluation"]["thresholds"] == pytest.approx(list(record.thresholds))
    assert report["f1_micro"] == pytest.approx(summary["test_f1_micro"], abs=1e-5)
    assert np.asarray(report["confusion_matrix"]).shape == (10, 2, 2)  # one binary matrix per label
    assert "multi-label at per-class thresholds" in capsys.readouterr().out


def predicted_sets(out, model, images, capsys):
    run_cli("predict", "--model", out / model, "--json", out / "p.json", *images)
    capsys.readouterr()
    predictions = json.loads((out / "p.json").read_text())["predictions"]
    return {os.path.basename(name): sorted(label for label, _ in found) for name, found in predictions.items()}


@GROUP
def test_predict_prints_the_same_label_sets_from_every_format(trained, tmp_path, capsys):
    out, _, record = trained
    x, _ = multilabel.multilabel_digits(image_size=(32, 32), channels=1)["test"]
    files = []
    for i in range(24):
        files.append(tmp_path / f"m{i:02d}.png")
        tf.io.write_file(str(files[-1]), tf.io.encode_png(tf.cast(tf.round(x[i] * 255), tf.uint8)))
    sets = {name: predicted_sets(out, name, files, capsys) for name in FORMATS}
    assert all(found == sets["lenet5.keras"] for found in sets.values())
    # what Keras's scores say at the thresholds (images read as predict reads them)
    model = keras.saving.load_model(out / "lenet5.keras", safe_mode=True)
    pixels = np.stack([record.prepare(tf.io.decode_png(tf.io.read_file(str(f)))[None] / 255)[0] for f in files])
    decided = model.predict(pixels, verbose=0) >= np.asarray(record.thresholds)
    assert sets["lenet5.keras"] == {f.name: [str(k) for k in np.flatnonzero(row)] for f, row in zip(files, decided)}
    assert len({len(found) for found in sets["lenet5.keras"].values()}) > 1  # several labels, not a top-1


@GROUP
def test_exports_say_independent_probabilities_and_carry_the_thresholds(trained):
    out, _, record = trained
    sidecar = json.loads((out / "lenet5.tflite.json").read_text())
    assert sidecar["task"] == "multilabel" and sidecar["thresholds"] == pytest.approx(list(record.thresholds))
    assert "independent per-class probabilities" in sidecar["output"]["description"]
    import onnx

    props = {p.key: p.value for p in onnx.load(str(out / "lenet5.onnx")).metadata_props}
    assert props["keras_cnn.task"] == "multilabel"
    assert json.loads(props["keras_cnn.thresholds"]) == pytest.approx(list(record.thresholds))
    meta = json.loads((out / "lenet5" / "1" / "assets.extra" / "keras_cnn.json").read_text())
    assert meta["task"] == "multilabel" and meta["class_names"] == list(record.class_names)
    signature = tf.saved_model.load(str(out / "lenet5" / "1")).signatures["serving_labels"]
    images, _ = split_arrays(record, "test", limit=32)
    got = signature(image=tf.constant(images))
    limits = np.asarray(record.thresholds, "float32")
    np.testing.assert_array_equal(got["labels"].numpy(), (got["probabilities"].numpy() >= limits).astype("int32"))


def write_listing(folder, count=60, seed=1):
    """PNG mosaics of digits with a labels.csv naming the digits (zero, one, ...); some images have no label."""
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    x, y = multilabel.multilabel_digits(image_size=(32, 32), channels=1, seed=seed, count=200)["train"]
    rows = ["path,labels"]
    for i in range(count):
        image = x[i] if i % 10 else np.zeros_like(x[i])  # every 10th: an empty image with no labels
        labels = [names[k] for k in np.flatnonzero(y[i])] if i % 10 else []
        tf.io.write_file(str(folder / "images" / f"{i:03d}.png"), tf.io.encode_png(tf.cast(image * 255, tf.uint8)))
        rows.append(f"images/{i:03d}.png,{';'.join(labels)}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return names


def test_train_on_a_listing_folder_then_evaluate_with_the_models_class_order(tmp_path, capsys):
    names = write_listing(tmp_path / "set")
    config = TrainConfig(model="lenet5", data=f"listing:{tmp_path / 'set'}", epochs=1, batch_size=16,
                         output=str(tmp_path / "out"), verbose=0, threshold_rule="break_even")
    summary = train.run(config)
    out = capsys.readouterr().out
    assert "60 images, 10 classes, 6 without labels (allowed)" in out
    record = preprocessing.load(tmp_path / "out" / "lenet5.preprocessing.json")
    assert record.class_names == tuple(sorted(names)) and record.task == "multilabel"
    assert summary["test_images"] == 12 and len(record.thresholds) == 10
    # a listing with a name the model does not know is refused, naming the line
    (tmp_path / "set" / "labels.csv").write_text("path,labels\nimages/001.png,eleven\n")
    with pytest.raises(SystemExit, match="line 2: unknown label 'eleven'"):
        run_cli("evaluate", "--model", tmp_path / "out" / "lenet5.keras", "--split", "all", "--plots", "none")


@pytest.mark.parametrize("values, message", [
    ({"data": "multilabel-digits", "task": "multiclass"}, "is multi-label"),
    ({"data": "digits", "task": "multilabel"}, "--task multilabel needs multi-label --data"),
    ({"data": "multilabel-digits", "threshold_rule": "median"}, "--threshold-rule"),
])
def test_task_and_data_must_agree(values, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**values)


def test_a_softmax_head_is_refused_for_multilabel(tmp_path):
    config = TrainConfig(model="lenet5", data="multilabel-digits", option=("classifier_activation=softmax",),
                         epochs=1, limit=32, output=str(tmp_path), verbose=0)
    with pytest.raises(ValueError, match="sigmoid classifier"):
        train.run(config)


def test_evaluate_refuses_single_label_data_for_a_multilabel_model(trained):
    out, _, _ = trained
    with pytest.raises(SystemExit, match="is single-label; the model .* is multi-label"):
        run_cli("evaluate", "--model", out / "lenet5.keras", "--data", "digits", "--plots", "none",
                "--report", "none")


def test_attached_thresholds_follow_rebuilds_that_keep_the_head():
    import keras_cnn

    model = keras_cnn.build("lenet5", classes=4, classifier_activation="sigmoid")
    thresholds.attach(model, [0.1, 0.2, 0.3, 0.4])
    assert thresholds.attached(keras_cnn.rebuild(model, name="copy")).tolist() == [0.1, 0.2, 0.3, 0.4]
    assert thresholds.attached(keras_cnn.rebuild(model, classes=5)) is None  # a new classifier, no thresholds
    with pytest.raises(ValueError, match="4 numbers in \\[0, 1\\]"):
        thresholds.attach(model, [0.1, 0.2, 1.5, 0.4])
    with pytest.raises(ValueError, match="classifier_activation='softmax'"):
        thresholds.attach(keras_cnn.build("lenet5", classes=4), [0.5] * 4)


def test_record_refuses_thresholds_out_of_range_or_on_a_multiclass_record(tmp_path):
    record = preprocessing.create((32, 32, 1), ["a", "b"], task="multilabel")
    path = tmp_path / "r.preprocessing.json"
    preprocessing.save(preprocessing.with_thresholds(record, [0.25, 0.75]), path)
    assert preprocessing.load(path).thresholds == (0.25, 0.75)
    values = json.loads(path.read_text())
    for change, message in (({"thresholds": [0.2, 1.2]}, r"thresholds\[1\] must be a finite number in \[0.0, 1.0\]"),
                            ({"thresholds": [0.2]}, "thresholds must be a list of 2 values"),
                            ({"task": "multiclass"}, "thresholds belongs to a multilabel record")):
        path.write_text(json.dumps({**values, **change}))
        with pytest.raises(ValueError, match=message):
            preprocessing.load(path)


def test_quantized_multilabel_exports_are_checked_on_whole_label_sets():
    """Agreement for a multi-label model is the share of images whose label set at the thresholds is unchanged:
    the same top-1 class with one other label flipped across its threshold counts as a disagreement."""
    import keras_cnn
    from keras_cnn import export

    keras.utils.set_random_seed(0)
    model = keras_cnn.build("lenet5", input_shape=(32, 32, 1), classes=4, classifier_activation="sigmoid")
    images = np.random.default_rng(0).uniform(0, 1, (10, 32, 32, 1)).astype("float32")
    expected = model.predict(images, verbose=0)
    limits = np.sort(expected, axis=1)[:, 1:3].mean(axis=1).mean() * np.ones(4)  # some labels on, some off
    thresholds.attach(model, limits)
    got = expected.copy()
    low = np.argmin(expected, axis=1)  # never the top-1 class
    assert np.all(expected[np.arange(10), low] < limits[0])  # off before the change
    got[:5][np.arange(5), low[:5]] = limits[0] + 0.01  # five images gain a label, their top-1 unchanged
    assert np.array_equal(got.argmax(-1), expected.argmax(-1))
    with pytest.raises(export.ExportVerificationError, match="label set of 5 of 10"):
        export._compare(model, images, got, "int8", "m.tflite", "tflite", "LiteRT", min_agreement=0.98)
    assert export._compare(model, images, expected, "int8", "m.tflite", "tflite", "LiteRT", 0.98).top1_agreement == 1
