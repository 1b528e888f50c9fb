"""The training callbacks and what makes an interrupted run resume without losing or repeating anything.

``BackupAndRestore`` saves the weights, the optimizer state and the epoch after every epoch; a new run of the same
command restores them and continues with the next epoch. Around it: the CSV log drops the rows of epochs that
the backup does not hold (written after the last backup, before a kill), so every epoch appears exactly once;
``ModelCheckpoint`` starts from the best value logged so far, so a resumed run does not replace a better model.
Order matters: ``ClassificationMetrics`` first (the others read its keys), the CSV log before the backup.
"""

import csv
import json
import math
import os
import time

import keras

from keras_cnn import _validate
from keras_cnn._tensorboard import ScalarWriter
from keras_cnn.app.recipes import MAIN_OUTPUT
from keras_cnn.callbacks import ClassificationMetrics
from keras_cnn.model import inference_model

MAXIMIZED = ("acc", "auc", "f1", "precision", "recall")
# The files keras.callbacks.BackupAndRestore keeps in its folder (its double checkpoint adds ".bkp" copies).
BACKUP_WEIGHTS, BACKUP_METADATA = "latest.weights.h5", "training_metadata.json"
# What ValidationMetrics (multiclass, no per-class keys) adds to every epoch's logs.
VALIDATION_KEYS = tuple(f"val_{metric}_{average}" for metric in ("pr_auc", "roc_auc", "f1")
                        for average in ("macro", "micro"))


class ValidationMetrics(ClassificationMetrics):
    """``ClassificationMetrics`` on the main output (auxiliary classifiers dropped), read as float32 (under mixed
    precision the model outputs bfloat16 or float16, which keras_cnn.metrics rightly refuses)."""

    def set_model(self, model):
        main = inference_model(model)
        if main.outputs[0].dtype != "float32":
            output = keras.layers.Activation("linear", dtype="float32", name="float32_scores")(main.outputs[0])
            main = keras.Model(main.inputs, output, name=main.name)
        super().set_model(main)


class InterruptBetweenBatches(keras.callbacks.Callback):
    """Ctrl-C (SIGINT) during ``fit`` raises ``KeyboardInterrupt`` at the next batch end, in Keras's loop.

    Python raises it wherever the main thread is when the signal lands; inside a finaliser, a weakref or a
    ``tf.data`` callback it is printed as "Exception ignored" and lost, and the run goes on (seen in CI: a
    100000-epoch run kept training after its SIGINT). Between batches nothing is half-written: the epoch's
    backup is whole. A second Ctrl-C raises at once; outside ``fit`` (or in the main thread's absence) the
    default handler stays."""

    def __init__(self):
        super().__init__()
        self._previous = None
        self._pending = False

    def on_train_begin(self, logs=None):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._pending = False
            self._previous = signal.signal(signal.SIGINT, self._defer)

    def _defer(self, signum, frame):
        if self._pending:  # asked twice: stop now
            raise KeyboardInterrupt
        self._pending = True

    def on_train_batch_end(self, batch, logs=None):
        if self._pending:
            self.restore()
            raise KeyboardInterrupt

    on_test_batch_end = on_train_batch_end  # validation takes a while too

    def on_train_end(self, logs=None):
        self.restore()
        if self._pending:
            raise KeyboardInterrupt

    def restore(self):
        """Put the previous SIGINT handler back (also after ``fit`` raised)."""
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


class ProgressFile(keras.callbacks.Callback):
    """Writes ``{"epoch", "batch", "time"}`` to a JSON file after every batch (atomically): a heartbeat that
    schedulers, dashboards and the resume test read to know how far training is."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        staging = f"{self.path}.tmp"
        with open(staging, "w", encoding="utf-8") as file:
            json.dump({"epoch": self._epoch, "batch": batch, "time": time.time()}, file)
        os.replace(staging, self.path)


class EpochScalars(keras.callbacks.Callback):
    """The epoch logs as TensorBoard scalars with TensorFlow alone (``keras.callbacks.TensorBoard`` needs the
    ``tensorboard`` package, which tensorflow-cpu does not install)."""

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = log_dir
        self._scalars = ScalarWriter(log_dir)

    def on_epoch_end(self, epoch, logs=None):
        self._scalars.write(logs or {}, epoch, prefix="epoch_")  # Keras's callback names them so

    def on_train_end(self, logs=None):
        self._scalars.close()


def tensorboard(log_dir):
    """Keras's TensorBoard callback when the ``tensorboard`` package is there, else :class:`EpochScalars`."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return EpochScalars(log_dir)
    return keras.callbacks.TensorBoard(log_dir)


def mode(monitor):
    """"max" for accuracies, AUCs, F1, precision and recall; "min" for losses (Keras's "auto" would pick
    "min" for ``val_pr_auc_macro``)."""
    return "max" if any(word in monitor for word in MAXIMIZED) else "min"


def monitors(outputs, custom=False):
    """The keys of the epoch logs of ``keras-cnn train`` (``outputs``: the model's output names, main first).

    ``loss``, ``accuracy`` and their ``val_`` twins; with several outputs model.fit logs ``loss``, each
    ``<output>_loss`` and ``predictions_accuracy`` instead (the custom loop logs the main output only); then
    :data:`VALIDATION_KEYS`.
    """
    if custom or len(outputs) == 1:
        train = ("loss", "accuracy")
    else:
        train = ("loss", *(f"{name}_loss" for name in outputs), f"{MAIN_OUTPUT}_accuracy")
    return (*train, *(f"val_{key}" for key in train), *VALIDATION_KEYS)


def resolve_monitor(monitor, outputs, custom=False):
    """``monitor`` (the value of --monitor) as the logs name it; a name the run will not log is a ``ValueError``
    listing those it will (Keras would only warn, and never write the best checkpoint). With several outputs
    under model.fit, ``accuracy`` and ``val_accuracy`` (the default) mean the main output's."""
    logged = monitors(outputs, custom)
    main = f"{MAIN_OUTPUT}_accuracy"
    aliases = {"accuracy": main, "val_accuracy": f"val_{main}"} if main in logged else {}
    _validate.check_choice("--monitor", monitor, (*logged, *aliases))
    return aliases.get(monitor, monitor)


def resume_epoch(backup_dir):
    """The epoch a run restored from ``backup_dir`` starts at (0 when there is no backup)."""
    path = os.path.join(backup_dir, BACKUP_METADATA)
    if not os.path.isfile(path):
        return 0
    with open(path, encoding="utf-8") as file:
        return int(json.load(file)["epoch"])


def hand_over_backup(model, backup_dir):
    """Turn the backup the first phase of ``--freeze-backbone`` left (its weights, its classifier-only optimizer,
    its last epoch) into the start of the second phase: the same weights with the second phase's fresh
    optimizer, built here (call after compiling, in the strategy's scope). A run killed before the second phase's
    first backup then resumes into it with an optimizer state that fits (Keras would skip a mismatched one with a
    warning)."""
    if not os.path.isfile(os.path.join(backup_dir, BACKUP_METADATA)):
        return
    model.optimizer.build(model.trainable_variables)
    staging = os.path.join(backup_dir, "handover.weights.h5")
    model.save_weights(staging)
    os.replace(staging, os.path.join(backup_dir, BACKUP_WEIGHTS))
    for name in (BACKUP_WEIGHTS, BACKUP_METADATA):  # the double checkpoint's previous copies are phase 1's
        if os.path.isfile(os.path.join(backup_dir, f"{name}.bkp")):
            os.remove(os.path.join(backup_dir, f"{name}.bkp"))


def read_log(path):
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def trim_log(path, epoch):
    """Keep the rows of epochs before ``epoch`` (all of them are in the backup); none for a fresh run."""
    rows = read_log(path)
    if epoch == 0 or not rows:
        if os.path.exists(path):
            os.remove(path)
        return []
    kept = [row for row in rows if int(row["epoch"]) < epoch]
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    return kept


def best_logged(rows, monitor):
    """The best ``monitor`` value among logged rows (None when there is none)."""
    values = [float(row[monitor]) for row in rows if row.get(monitor) not in (None, "")]
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return None
    return max(values) if mode(monitor) == "max" else min(values)


def standard(files, *, validation, class_names, monitor, patience, resume_from, backup=True, keep_backup=False,
             progress_file=None, tensorboard_dir=None, task="multiclass"):
    """The callback list of ``keras-cnn train`` (``files``: a ``RunFiles``). ``keep_backup`` leaves the backup
    when training ends (the first phase of ``--freeze-backbone``: the second takes it over); ``task``: the
    validation metrics' (multilabel: F1 at 0.5 during training; the per-class thresholds come after it)."""
    callbacks = [ValidationMetrics(validation, task=task, class_names=class_names), keras.callbacks.TerminateOnNaN()]
    rows = trim_log(files.log, resume_from)
    callbacks.append(keras.callbacks.CSVLogger(files.log, append=True))
    callbacks.append(keras.callbacks.ModelCheckpoint(
        files.best, monitor=monitor, mode=mode(monitor), save_best_only=True, save_weights_only=True,
        initial_value_threshold=best_logged(rows, monitor) if os.path.isfile(files.best) else None))
    if backup:
        callbacks.append(keras.callbacks.BackupAndRestore(files.backup, double_checkpoint=True,
                                                          delete_checkpoint=not keep_backup))
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode(monitor), patience=patience))
    if tensorboard_dir:
        callbacks.append(tensorboard(tensorboard_dir))
    if progress_file:
        callbacks.append(ProgressFile(progress_file))
    return callbacks
