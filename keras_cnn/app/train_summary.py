"""The end of ``keras-cnn train``: test-set figures and a summary a person can read at a glance."""

import json
import os

import numpy as np


def finish(args, model, data, record, files, history, resume_from, strategy, seconds, chief, state):
    """Evaluate ``model`` on the test split, print the summary, write ``summary.json``; return it as a dict.

    ``state``: the last weights' fingerprint and the optimizer's step count (every epoch's steps when a resumed
    run restored the optimizer).
    """
    from keras_cnn import metrics
    from keras_cnn.app import fit_callbacks, pipeline

    images, labels = pipeline.arrays(data["test"], record)
    scores = model.predict(images, batch_size=args.batch_size, verbose=0)
    rows = fit_callbacks.read_log(files.log) if chief else []
    epochs = [int(row["epoch"]) for row in rows] or [resume_from + i for i in range(len(history.epoch))]
    monitor = _monitor(args, model, history, rows)
    best_epoch, best = _best(rows, history, monitor)
    summary = {
        "model": model.name, "data": args.data, "test_images": int(len(labels)),
        "test_accuracy": metrics.accuracy(labels, scores, task="multiclass"),
        "test_f1_macro": metrics.f1_score(labels, scores, task="multiclass", average="macro"),
        "epochs": epochs, "epochs_this_run": len(history.epoch), "resumed_from": resume_from,
        "stopped_early": bool(len(epochs) < args.epochs), "monitor": monitor, "best_epoch": best_epoch,
        "best_value": best, "final_weights": args.final, "replicas": strategy.num_replicas_in_sync,
        "strategy": args.strategy, **state, "seconds": round(seconds, 1),
        "files": [files.model, files.record, files.folder] if chief else [],
    }
    _print(summary, history)
    if chief:
        with open(os.path.join(files.folder, "summary.json"), "w", encoding="utf-8") as file:
            json.dump(summary, file, indent=2)
    return summary


def _monitor(args, model, history, rows):
    keys = set(history.history) | (set(rows[0]) if rows else set())
    if args.monitor in keys:
        return args.monitor
    return "val_predictions_accuracy" if "val_predictions_accuracy" in keys else args.monitor


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
