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
    rows = fit_callbacks.read_log(files.log) if run.chief else []
    epochs = [int(row["epoch"]) for row in rows] or [run.resume_from + i for i in range(len(history.epoch))]
    monitor = _monitor(config, history, rows)
    best_epoch, best = _best(rows, history, monitor)
    summary = {
        "model": model.name, "data": config.data, "test_images": int(len(labels)),
        "test_accuracy": metrics.accuracy(labels, scores, task="multiclass"),
        "test_f1_macro": metrics.f1_score(labels, scores, task="multiclass", average="macro"),
        "epochs": epochs, "epochs_this_run": len(history.epoch), "resumed_from": run.resume_from,
        "stopped_early": bool(len(epochs) < config.epochs), "monitor": monitor, "best_epoch": best_epoch,
        "best_value": best, "final_weights": config.final, "replicas": run.strategy.num_replicas_in_sync,
        "strategy": config.strategy, "fingerprint": outcome.fingerprint, "optimizer_steps": outcome.optimizer_steps,
        "seconds": round(seconds, 1), "files": [files.model, files.record, files.folder] if run.chief else [],
    }
    _print(summary, history)
    if run.chief:
        _files.write_text(os.path.join(files.folder, "summary.json"), json.dumps(summary, indent=2))
    return summary


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
        ("epochs", f"{len(epochs)} ({epochs[0]}..{epochs[-1]})" if epochs else "0")
        if not summary["resumed_from"] else
        ("epochs", f"{len(epochs)}, resumed at epoch {summary['resumed_from']}"),
        ("best epoch", f"{summary['best_epoch']}: {summary['monitor']} {_fmt(summary['best_value'])} "
                       f"(saved: {summary['final_weights']} weights)"),
        ("last epoch", "  ".join(f"{k} {_fmt(last[k])}" for k in shown if k in last)),
        ("test", f"accuracy {summary['test_accuracy']:.4f}  f1_macro {summary['test_f1_macro']:.4f}  "
                 f"({summary['test_images']} images)"),
        ("run", f"{summary['seconds']} s, {summary['strategy']} strategy, {summary['replicas']} replica(s), "
                f"{summary['optimizer_steps']} optimizer steps, last weights {summary['fingerprint']}"),
    ]
    if summary["files"]:
        lines.append(("saved", ", ".join(summary["files"])))
    print(f"\nTraining summary: {summary['model']} on {summary['data']}")
    for label, text in lines:
        print(f"  {label:<11} {text}")
    print(flush=True)


def _fmt(value):
    return "n/a" if value is None else f"{value:.4f}"
