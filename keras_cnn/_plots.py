"""PNG plots of exact PR and ROC curves (per class and micro) and confusion matrices, from ``keras_cnn.metrics``.

``save_plots`` is public as ``keras_cnn.callbacks.save_plots``; ``ClassificationMetrics`` calls it with
``plot_dir``, and ``keras-cnn evaluate`` for its ``--plots``. ``save_history_plot`` draws a run's losses and
accuracies per epoch (``keras-cnn train``'s ``training_curves.png``).
"""

import math
import os
from typing import Callable, NamedTuple

import numpy as np

from keras_cnn import metrics as _metrics

# Beyond this many classes per-class curves and annotated cells stop being readable.
MAX_PLOT_CLASSES = 20


def _figure(n_axes=1, ncols=1, size=5.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    nrows = math.ceil(n_axes / ncols)
    # An Agg canvas on a bare Figure leaves pyplot and the global backend untouched.
    fig = Figure(figsize=(size * ncols, size * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_axes:]:
        ax.set_axis_off()
    return fig, axes[:n_axes]


def _labels(task, n_classes, class_names):
    if class_names is not None:
        return list(class_names)
    return ["negative", "positive"] if task == "binary" else [f"class {k}" for k in range(n_classes)]


class _CurveKind(NamedTuple):
    curve: Callable  # precision_recall_curve or roc_curve
    area: Callable  # pr_auc or roc_auc
    swap_xy: bool  # the PR functions return (precision, recall), plotted recall first
    drawstyle: str
    labels: tuple  # x label, y label, title, diagonal's label
    legend: str


_PR = _CurveKind(_metrics.precision_recall_curve, _metrics.pr_auc, True, "steps-post",
                 ("recall", "precision", "Precision-recall (legend: average precision)", "P = R (break-even)"),
                 "lower left")
_ROC = _CurveKind(_metrics.roc_curve, _metrics.roc_auc, False, "default",
                  ("false positive rate", "true positive rate", "ROC (legend: AUC)", "chance"), "lower right")


def _curve_plot(path, kind, y_true, y_score, task, names):
    """One figure: per-class curves (up to MAX_PLOT_CLASSES) and the micro curve."""
    fig, (ax,) = _figure()
    if task == "binary":
        curves = [(kind.curve(y_true, y_score, task=task), kind.area(y_true, y_score, task=task), names[-1], 1.5)]
    else:
        per_class = kind.curve(y_true, y_score, task=task, average=None)
        areas = kind.area(y_true, y_score, task=task, average=None)
        curves = list(zip(per_class, areas, names, [1.0] * len(names)))[:MAX_PLOT_CLASSES]
        micro = kind.curve(y_true, y_score, task=task, average="micro")
        curves.append((micro, kind.area(y_true, y_score, task=task, average="micro"), "micro", 2.5))
    for (a, b, _), area, name, width in curves:
        if not np.isnan(area):
            x, y = (b, a) if kind.swap_xy else (a, b)
            ax.plot(x, y, lw=width, drawstyle=kind.drawstyle, label=f"{name} ({area:.3f})")
    xlabel, ylabel, title, diagonal = kind.labels
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label=diagonal)
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(loc=kind.legend, fontsize="small")
    fig.savefig(path, dpi=100)
    return path


def _matrix(ax, counts, row_names, col_names, title):
    ax.imshow(counts, cmap="Blues")
    ax.set(
        xticks=range(len(col_names)), yticks=range(len(row_names)), xlabel="predicted", ylabel="true", title=title
    )
    ax.set_xticklabels(col_names, rotation=90 if len(col_names) > 2 else 0)
    ax.set_yticklabels(row_names)
    if counts.shape[0] <= MAX_PLOT_CLASSES:
        dark = counts > counts.max() / 2
        for (i, j), n in np.ndenumerate(counts):
            ax.text(j, i, str(n), ha="center", va="center", color="white" if dark[i, j] else "black")


def save_plots(y_true, y_score, plot_dir, *, task="multiclass", tag="final", class_names=None, threshold=0.5):
    """Write ``<tag>_pr_curve.png``, ``<tag>_roc_curve.png`` and ``<tag>_confusion_matrix.png``.

    Useful after ``fit`` too, e.g. on ``model.predict`` once EarlyStopping has
    restored the best weights (the callback's ``final`` plots show the weights
    at the end of training).  Returns the paths written.
    """
    os.makedirs(plot_dir, exist_ok=True)
    cm = _metrics.confusion_matrix(y_true, y_score, task=task, threshold=threshold)
    n_classes = 2 if task == "binary" else cm.shape[0]
    names = _labels(task, n_classes, class_names)
    if len(names) != n_classes:
        raise ValueError(f"class_names must have {n_classes} names; received {len(names)}")
    stem = os.path.join(plot_dir, tag)
    paths = [
        _curve_plot(f"{stem}_pr_curve.png", _PR, y_true, y_score, task, names),
        _curve_plot(f"{stem}_roc_curve.png", _ROC, y_true, y_score, task, names),
    ]
    if task == "multilabel":
        shown = min(n_classes, MAX_PLOT_CLASSES)
        fig, axes = _figure(shown, ncols=min(shown, 5), size=2.6)
        for ax, counts, name in zip(axes, cm, names):
            _matrix(ax, counts, ["0", "1"], ["0", "1"], name)
    else:
        fig, (ax,) = _figure(size=max(5.0, 0.4 * n_classes))
        _matrix(ax, cm, names, names, "Confusion matrix")
    paths.append(f"{stem}_confusion_matrix.png")
    fig.savefig(paths[-1], dpi=100)
    return paths


def save_history_plot(history, path):
    """One PNG of the per-epoch losses and accuracies of a training run (``history``: Keras's ``History.history``
    or the rows of its CSV log, ``{key: [value per epoch]}``), epochs numbered from 1 as Keras prints them.
    An ``epoch`` entry (the CSV log's, 0-based) places the points; else they are epochs 1, 2, ...
    Returns ``path``, or None when the logs hold neither a loss nor an accuracy."""
    panels = [("loss", [k for k in ("loss", "val_loss") if k in history]),
              ("accuracy", [k for k in ("accuracy", "val_accuracy", "predictions_accuracy",
                                        "val_predictions_accuracy") if k in history])]
    panels = [(title, keys) for title, keys in panels if keys]
    if not panels:
        return None
    fig, axes = _figure(len(panels), ncols=len(panels), size=4.5)
    for ax, (title, keys) in zip(axes, panels):
        for key in keys:
            values = np.asarray(history[key], dtype="float64")
            epochs = np.asarray(history.get("epoch", range(len(values))), dtype="int64") + 1
            ax.plot(epochs, values, marker="o", ms=3, label=key)
        ax.set(xlabel="epoch", ylabel=title, title=title.capitalize())
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=100)
    return path
