"""The end of ``keras-cnn train``: test-set figures and a summary a person can read at a glance."""

import dataclasses
import json
import os
import time

import numpy as np

from keras_cnn import _files


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What training left besides the model: Keras's ``History``, a fingerprint of the last weights (equal on every
    worker) and the optimizer's step count (every epoch's steps when a resumed run restored the optimizer)."""

    history: object
    fingerprint: str
    optimizer_steps: int
    recalibrated: dict | None = None  # recalibrate_batch_norm's summary with --recalibrate-bn


# The summary calls the BatchNorm statistics stale when, on up to STALE_BATCHES validation batches, the forward pass
# with each batch's own statistics beats inference mode (the moving statistics) by at least this much accuracy or
# cross-entropy: the moving averages lag behind the weights (short or high-rate training) and --recalibrate-bn helps.
STALE_BATCHES, STALE_ACCURACY_GAP, STALE_LOSS_GAP = 4, 0.05, 0.1


def finish(config, run, model, outcome):
    """Evaluate ``model`` on the test split, print the summary, write ``summary.json``; return it as a dict.

    ``config``: the ``TrainConfig``; ``run``: the ``Run`` (data, record, files, strategy, chief, start time).
    """
    from keras_cnn import metrics
    from keras_cnn.app import fit_callbacks, pipeline

    seconds = time.perf_counter() - run.started
    history, files = outcome.history, run.files
    images, labels = pipeline.arrays(run.data["test"], run.record)
    scores = model.predict(images, batch_size=config.batch_size, verbose=0)
    # multilabel: the thresholds chosen on validation decide (accuracy is the exact match of the label set)
    limits = run.record.decision_thresholds()
    decide = {"task": config.task, "threshold": 0.5 if limits is None else np.asarray(limits)}
    rows = fit_callbacks.read_log(files.log) if run.chief else []
    epochs = [int(row["epoch"]) for row in rows] or [run.resume_from + i for i in range(len(history.epoch))]
    monitor = _monitor(config, history, rows)
    best_epoch, best = _best(rows, history, monitor)
    summary = {
        "model": model.name, "data": config.data, "test_images": int(len(labels)),
        "task": config.task, "test_accuracy": metrics.accuracy(labels, scores, **decide),
        "test_f1_macro": metrics.f1_score(labels, scores, average="macro", **decide),
        "test_f1_micro": metrics.f1_score(labels, scores, average="micro", **decide),
        "thresholds": list(run.record.thresholds) if run.record.thresholds else None,
        "epochs": epochs, "epochs_this_run": len(history.epoch), "resumed_from": run.resume_from,
        "stopped_early": bool(len(epochs) < config.epochs), "monitor": monitor, "best_epoch": best_epoch,
        "best_value": best, "final_weights": config.final, "replicas": run.strategy.num_replicas_in_sync,
        "strategy": config.strategy, "fingerprint": outcome.fingerprint, "optimizer_steps": outcome.optimizer_steps,
        "seconds": round(seconds, 1), "files": [files.model, files.record, files.folder] if run.chief else [],
        "batch_norm": batch_norm_check(model, run, config.batch_size, outcome.recalibrated), "plot": None,
    }
    if run.chief:
        summary["plot"] = _plot(rows, history, files)
    _print(summary, history)
    if run.chief:
        _files.write_text(os.path.join(files.folder, "summary.json"), json.dumps(summary, indent=2))
    return summary


def batch_norm_check(model, run, batch_size, recalibrated=None):
    """Accuracy and cross-entropy on up to ``STALE_BATCHES`` validation batches with the moving BN statistics
    (inference) and with each batch's own (``batch_statistics_predict``), and whether they look stale; None for a
    model without BatchNormalization or without validation images."""
    from keras_cnn.app import pipeline
    from keras_cnn.batch_norm import batch_norm_layers, batch_statistics_predict

    if not batch_norm_layers(model) or not run.data["val"].count:
        return None
    batches = pipeline.evaluation(run.data["val"], run.record, batch_size=batch_size, cache="none").take(STALE_BATCHES)
    labels, inference, statistics = [], [], []
    for images, batch_labels in batches:
        labels.append(np.asarray(batch_labels))
        inference.append(np.asarray(model.predict_on_batch(images)))
        statistics.append(batch_statistics_predict(model, images))
    labels = np.concatenate(labels)
    (acc, loss), (batch_acc, batch_loss) = (_scores(labels, np.concatenate(p)) for p in (inference, statistics))
    return {"images": int(len(labels)), "inference_accuracy": acc, "batch_statistics_accuracy": batch_acc,
            "inference_loss": loss, "batch_statistics_loss": batch_loss, "recalibrated": recalibrated,
            "stale": bool(batch_acc - acc >= STALE_ACCURACY_GAP or loss - batch_loss >= STALE_LOSS_GAP)}


def _scores(labels, probabilities):
    """Accuracy and mean cross-entropy of softmax ``probabilities``; for multi-hot ``labels`` (sigmoid scores) the
    share of labels right at 0.5 and the mean binary cross-entropy."""
    if labels.ndim == 2:
        p = np.clip(probabilities.astype("float64"), 1e-12, 1 - 1e-12)
        accuracy = float(np.mean((probabilities >= 0.5) == (labels > 0.5)))
        return accuracy, float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    picked = probabilities[np.arange(len(labels)), labels.astype(int)]
    accuracy = float(np.mean(probabilities.argmax(axis=-1) == labels))
    return accuracy, float(-np.mean(np.log(np.clip(picked.astype("float64"), 1e-12, 1.0))))


def _batch_norm_line(check):
    """The summary's "batch norm" text: the two passes' figures, and the suggestion when they differ clearly."""
    text = (f"val accuracy {check['inference_accuracy']:.4f} / loss {check['inference_loss']:.4f} with the moving "
            f"statistics, {check['batch_statistics_accuracy']:.4f} / {check['batch_statistics_loss']:.4f} with "
            f"batch statistics ({check['images']} images)")
    done = check["recalibrated"]
    if done:
        text = f"recalibrated {done['layers']} layers on {done['images']} training images; " + text
    if check["stale"]:
        text += ("; the statistics still lag (try more training images)" if done else
                 "; the statistics look stale: rerun with --recalibrate-bn (or call keras_cnn.recalibrate_batch_norm)")
    return text


def _plot(rows, history, files):
    """``<name>_train/training_curves.png``: loss and accuracy per epoch, every epoch of the log (resumed runs
    included); None without matplotlib (the ``plots`` extra)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    from keras_cnn._plots import save_history_plot

    logged = {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else ())
              if all(row.get(key) not in (None, "") for row in rows)} or dict(history.history)
    return save_history_plot(logged, os.path.join(files.folder, "training_curves.png"))


def _monitor(config, history, rows):
    keys = set(history.history) | (set(rows[0]) if rows else set())
    if config.monitor in keys:
        return config.monitor
    return "val_predictions_accuracy" if "val_predictions_accuracy" in keys else config.monitor


def _best(rows, history, monitor):
    from keras_cnn.app import fit_callbacks

    pairs = [(int(r["epoch"]), float(r[monitor])) for r in rows if r.get(monitor) not in (None, "")]
    if not pairs and monitor in history.history:
        pairs = list(zip(history.epoch, history.history[monitor]))
    if not pairs:
        return None, None
    values = np.array([v for _, v in pairs])
    index = int(np.nanargmax(values) if fit_callbacks.mode(monitor) == "max" else np.nanargmin(values))
    return pairs[index][0], float(values[index])


def _print(summary, history):
    last = {k: v[-1] for k, v in history.history.items() if v}
    shown = ("loss", "accuracy", "predictions_accuracy", "val_loss", "val_accuracy", "val_predictions_accuracy",
             "val_f1_macro", "val_pr_auc_macro")
    epochs = summary["epochs"]
    lines = [
        ("epochs", f"{len(epochs)} ({epochs[0] + 1}..{epochs[-1] + 1})" if epochs else "0")
        if not summary["resumed_from"] else
        ("epochs", f"{len(epochs)}, resumed at epoch {summary['resumed_from'] + 1}"),
        ("best epoch", f"{_epoch(summary['best_epoch'])}: {summary['monitor']} {_fmt(summary['best_value'])} "
                       f"(saved: {summary['final_weights']} weights)"),
        ("last epoch", "  ".join(f"{k} {_fmt(last[k])}" for k in shown if k in last)),
        ("test", _test_line(summary)),
        ("run", f"{summary['seconds']} s, {summary['strategy']} strategy, {summary['replicas']} replica(s), "
                f"{summary['optimizer_steps']} optimizer steps, last weights {summary['fingerprint']}"),
    ]
    if summary["batch_norm"]:
        lines.append(("batch norm", _batch_norm_line(summary["batch_norm"])))
    if summary["files"]:
        lines.append(("saved", ", ".join(summary["files"])))
    if summary.get("plot"):
        lines.append(("plot", summary["plot"]))
    # Epochs as Keras prints them ("Epoch 1/3"); summary.json and history.csv keep Keras's 0-based indices.
    print(f"\nTraining summary: {summary['model']} on {summary['data']}")
    for label, text in lines:
        print(f"  {label:<11} {text}")
    print(flush=True)


def _test_line(summary):
    """The test figures: accuracy and macro F1, or for multilabel the micro and macro F1 and the exact-match share
    at the per-class thresholds."""
    images = f"({summary['test_images']} images)"
    if summary["task"] != "multilabel":
        return f"accuracy {summary['test_accuracy']:.4f}  f1_macro {summary['test_f1_macro']:.4f}  {images}"
    return (f"f1_micro {summary['test_f1_micro']:.4f}  f1_macro {summary['test_f1_macro']:.4f}  exact match "
            f"{summary['test_accuracy']:.4f}  {images}, at per-class thresholds chosen on validation")


def _epoch(index):
    return "n/a" if index is None else index + 1


def _fmt(value):
    return "n/a" if value is None else f"{value:.4f}"
