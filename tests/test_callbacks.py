"""ClassificationMetrics in real (tiny) Keras fits, checked against scikit-learn."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn import metrics as sk

from keras_cnn import metrics as m
from keras_cnn.callbacks import ClassificationMetrics, save_plots

N_FEATURES, N_CLASSES = 8, 3
KEYS_MULTI = ["val_pr_auc_macro", "val_pr_auc_micro", "val_roc_auc_macro", "val_roc_auc_micro", "val_f1_macro",
              "val_f1_micro"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _data(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, n)
    centers = rng.normal(size=(N_CLASSES, N_FEATURES))
    x = (0.6 * centers[y] + rng.normal(size=(n, N_FEATURES))).astype("float32")
    return x, y


X_TRAIN, Y_TRAIN = _data(150, 0)
X_VAL, Y_VAL = _data(90, 1)
Y_VAL_1HOT = np.eye(N_CLASSES)[Y_VAL]


def _model(units=N_CLASSES, activation="softmax", loss="sparse_categorical_crossentropy", lr=0.1):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((N_FEATURES,)), keras.layers.Dense(units, activation=activation)])
    model.compile(optimizer=keras.optimizers.SGD(lr), loss=loss)
    return model


class Recorder(keras.callbacks.Callback):
    """Placed after ClassificationMetrics: what it predicts and which keys it sees."""

    def __init__(self, x):
        super().__init__()
        self.x, self.predictions, self.keys = x, [], []

    def on_epoch_end(self, epoch, logs=None):
        self.predictions.append(self.model.predict(self.x, verbose=0))
        self.keys.append(sorted(k for k in logs if k.startswith("val_")))


def _sklearn_multiclass(y, scores):
    onehot, pred = np.eye(scores.shape[1])[y], scores.argmax(axis=1)
    ranking = {"pr_auc": sk.average_precision_score, "roc_auc": sk.roc_auc_score}
    expected = {f"val_{name}_{avg}": fn(onehot, scores, average=avg) for name, fn in ranking.items()
                for avg in ("macro", "micro")}
    expected["val_f1_macro"] = sk.f1_score(y, pred, average="macro", labels=range(scores.shape[1]), zero_division=0)
    expected["val_f1_micro"] = sk.accuracy_score(y, pred)
    return expected


def _monitors(tmp_path):
    """EarlyStopping and ModelCheckpoint(save_best_only) on the exact macro PR-AUC."""
    early = keras.callbacks.EarlyStopping(monitor="val_pr_auc_macro", mode="max", patience=2)
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "best_{epoch:02d}.weights.h5"), monitor="val_pr_auc_macro", mode="max",
        save_best_only=True, save_weights_only=True,
    )
    return early, checkpoint


def _assert_history_matches(history, expected_per_epoch):
    for epoch, expected in enumerate(expected_per_epoch):
        for key, value in expected.items():
            assert history[key][epoch] == pytest.approx(value, abs=1e-9), (key, epoch)


def test_early_stopping_and_checkpoint_act_on_exact_values(tmp_path):
    model = _model()
    recorder = Recorder(X_VAL)
    early, checkpoint = _monitors(tmp_path)
    callbacks = [ClassificationMetrics((X_VAL, Y_VAL)), recorder, early, checkpoint]
    history = model.fit(X_TRAIN, Y_TRAIN, epochs=8, batch_size=32, verbose=0, callbacks=callbacks).history

    _assert_history_matches(history, [_sklearn_multiclass(Y_VAL, p) for p in recorder.predictions])
    values = history["val_pr_auc_macro"]
    improved = [e + 1 for e, v in enumerate(values) if v > max(values[:e], default=-np.inf)]
    saved = sorted(int(os.path.basename(p)[5:7]) for p in glob.glob(str(tmp_path / "best_*.weights.h5")))
    assert saved == improved
    assert early.best == max(values)
    if len(values) < 8:  # stopped early: patience epochs after the best one
        assert len(values) == values.index(max(values)) + 1 + early.patience


def test_early_stopping_stops_on_a_flat_metric(tmp_path):
    # With a zero learning rate the metric never improves after epoch 1, so
    # EarlyStopping must stop after 1 + patience epochs -- only if it sees the key.
    model = _model(lr=0.0)
    early, checkpoint = _monitors(tmp_path)
    callbacks = [ClassificationMetrics((X_VAL, Y_VAL)), early, checkpoint]
    history = model.fit(X_TRAIN, Y_TRAIN, epochs=10, verbose=0, callbacks=callbacks).history
    assert len(history["val_pr_auc_macro"]) == 3
    assert [os.path.basename(p) for p in glob.glob(str(tmp_path / "*.h5"))] == ["best_01.weights.h5"]


def test_tf_data_validation_with_shuffle_and_one_hot_labels():
    dataset = tf.data.Dataset.from_tensor_slices((X_VAL, Y_VAL_1HOT)).shuffle(90, seed=0).batch(16)
    recorder = Recorder(X_VAL)
    model = _model()
    callback = ClassificationMetrics(dataset)
    history = model.fit(X_TRAIN, Y_TRAIN, epochs=2, verbose=0, callbacks=[callback, recorder]).history
    _assert_history_matches(history, [_sklearn_multiclass(Y_VAL, p) for p in recorder.predictions])
    # compute() evaluates the current weights on demand, outside fit.
    after = {key: [value] for key, value in callback.compute().items()}
    _assert_history_matches(after, [_sklearn_multiclass(Y_VAL, model.predict(X_VAL, verbose=0))])


def test_binary_keys_and_logits():
    y_train, y_val = (Y_TRAIN == 0).astype("float32"), (Y_VAL == 0).astype(int)
    model = _model(units=1, activation=None, loss=keras.losses.BinaryCrossentropy(from_logits=True))
    recorder = Recorder(X_VAL)
    callbacks = [ClassificationMetrics((X_VAL, y_val), task="binary", from_logits=True), recorder]
    history = model.fit(X_TRAIN, y_train, epochs=2, verbose=0, callbacks=callbacks).history
    assert recorder.keys[-1] == ["val_f1", "val_pr_auc", "val_roc_auc"]
    expected = []
    for logits in recorder.predictions:
        probabilities = 1 / (1 + np.exp(-logits[:, 0].astype(np.float64)))
        expected.append({
            "val_pr_auc": sk.average_precision_score(y_val, logits[:, 0]),
            "val_roc_auc": sk.roc_auc_score(y_val, logits[:, 0]),
            "val_f1": sk.f1_score(y_val, probabilities >= 0.5),
        })
    _assert_history_matches(history, expected)


def test_multilabel_keys_with_per_class_names():
    rng = np.random.default_rng(2)
    y_train = (rng.random((150, N_CLASSES)) < 0.4).astype("float32")
    y_val = (rng.random((90, N_CLASSES)) < 0.4).astype(int)
    model = _model(activation="sigmoid", loss="binary_crossentropy")
    recorder = Recorder(X_VAL)
    callback = ClassificationMetrics((X_VAL, y_val), task="multilabel", per_class=True,
                                     class_names=["cat", "dog", "owl"])
    history = model.fit(X_TRAIN, y_train, epochs=1, verbose=0, callbacks=[callback, recorder]).history
    per_class = [f"val_{metric}_{name}" for metric in ("pr_auc", "roc_auc", "f1") for name in ("cat", "dog", "owl")]
    assert recorder.keys[0] == sorted(KEYS_MULTI + per_class)
    scores = recorder.predictions[0]
    assert history["val_roc_auc_owl"][0] == pytest.approx(sk.roc_auc_score(y_val[:, 2], scores[:, 2]), abs=1e-9)
    assert history["val_f1_micro"][0] == pytest.approx(sk.f1_score(y_val, scores >= 0.5, average="micro"), abs=1e-9)


def test_every_n_epochs_only_computes_on_evaluated_epochs(monkeypatch):
    callback = ClassificationMetrics((X_VAL, Y_VAL), every_n_epochs=2)
    calls = []
    original = callback._predict
    monkeypatch.setattr(callback, "_predict", lambda: calls.append(1) or original())
    recorder = Recorder(X_VAL)
    _model().fit(X_TRAIN, Y_TRAIN, epochs=5, verbose=0, callbacks=[callback, recorder])
    assert [bool(keys) for keys in recorder.keys] == [False, True, False, True, False]
    assert recorder.keys[1] == sorted(KEYS_MULTI)
    assert len(calls) == 2


def test_missing_class_in_validation_warns_without_stopping_training():
    keep = Y_VAL != 2
    callback = ClassificationMetrics((X_VAL[keep], Y_VAL[keep]))
    with pytest.warns(m.UndefinedMetricWarning, match=r"\[2\]"):
        history = _model().fit(X_TRAIN, Y_TRAIN, epochs=2, verbose=0, callbacks=[callback]).history
    assert len(history["val_pr_auc_macro"]) == 2 and not np.isnan(history["val_pr_auc_macro"]).any()


def test_log_dir_writes_tensorboard_scalars(tmp_path):
    callback = ClassificationMetrics((X_VAL, Y_VAL), log_dir=tmp_path / "tb")
    history = _model().fit(X_TRAIN, Y_TRAIN, epochs=2, verbose=0, callbacks=[callback]).history
    events = glob.glob(str(tmp_path / "tb" / "events.out.tfevents.*"))
    assert events
    scalars = {}
    for path in events:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                scalars[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    for key in KEYS_MULTI:
        for epoch in range(2):
            assert scalars[(key, epoch)] == pytest.approx(history[key][epoch], abs=1e-6)


def test_plot_dir_writes_png_files(tmp_path):
    callback = ClassificationMetrics((X_VAL, Y_VAL), plot_dir=tmp_path, plot_every_n_epochs=2,
                                     class_names=["a", "b", "c"])
    _model().fit(X_TRAIN, Y_TRAIN, epochs=2, verbose=0, callbacks=[callback])
    names = sorted(os.listdir(tmp_path))
    kinds = ["confusion_matrix.png", "pr_curve.png", "roc_curve.png"]
    assert names == [f"epoch_002_{k}" for k in kinds] + [f"final_{k}" for k in kinds]
    for name in names:
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("task", ["binary", "multilabel"])
def test_save_plots_for_other_tasks(tmp_path, task):
    rng = np.random.default_rng(0)
    shape = (60,) if task == "binary" else (60, 4)
    y = (rng.random(shape) < 0.4).astype(int)
    paths = save_plots(y, rng.random(shape), tmp_path, task=task, tag="t")
    assert [os.path.basename(p) for p in paths] == ["t_pr_curve.png", "t_roc_curve.png", "t_confusion_matrix.png"]
    assert all(open(p, "rb").read(8) == PNG_MAGIC for p in paths)


def test_dataset_must_yield_pairs():
    dataset = tf.data.Dataset.from_tensor_slices(X_VAL).batch(30)
    callback = ClassificationMetrics(dataset)
    callback.set_model(_model())
    with pytest.raises(ValueError, match=r"must yield \(x, y\) batches"):
        callback.compute()
