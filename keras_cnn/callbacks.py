"""Exact classification metrics at epoch end, where other callbacks can act on them.

``keras.metrics.AUC`` approximates the curve with 200 thresholds and
accumulates over batches; ``ClassificationMetrics`` predicts the whole
validation set once per evaluated epoch and computes the values exactly with
``keras_cnn.metrics``.
"""

import math
import os
import warnings
from typing import Callable, NamedTuple

import keras
import numpy as np

from . import _validate
from . import metrics as _metrics

# Beyond this many classes per-class curves and annotated cells stop being readable.
MAX_PLOT_CLASSES = 20


def _single_output(prediction):
    if isinstance(prediction, (list, tuple, dict)):
        raise ValueError(
            f"ClassificationMetrics needs a model with a single output; received {len(prediction)} outputs"
        )
    return np.asarray(prediction)


class ClassificationMetrics(keras.callbacks.Callback):
    """Adds exact PR-AUC, ROC-AUC and F1 on ``validation_data`` to the epoch logs.

    Keys (with the default ``prefix="val_"``): binary -> ``val_pr_auc``,
    ``val_roc_auc``, ``val_f1``; multiclass / multilabel -> ``val_pr_auc_macro``,
    ``val_pr_auc_micro``, ``val_roc_auc_macro``, ``val_roc_auc_micro``,
    ``val_f1_macro``, ``val_f1_micro``, plus ``val_<metric>_<class name>`` per
    class with ``per_class=True``.

    Keras runs callbacks in list order and each reads the shared ``logs``, so
    put this callback *before* any that monitor its keys (EarlyStopping,
    ModelCheckpoint, ReduceLROnPlateau, CSVLogger, TensorBoard).  History and
    the progress bar always come after it.

    Args:
        validation_data: ``(x, y)`` arrays, or a re-iterable dataset (e.g.
            ``tf.data.Dataset``) yielding ``(x, y)`` batches.  A dataset is
            read once per evaluation and each batch's predictions are paired
            with its own labels, so reshuffling is harmless.  For multiclass,
            ``y`` may be class indices or one-hot rows (reduced with arg-max).
        task: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        prefix: prepended to every key.
        every_n_epochs: compute on epochs ``n, 2n, ...`` (1-based) only; the
            other epochs carry no keys, like Keras's ``validation_freq``.
        class_names: names for per-class keys and plot labels (K names; two,
            negative then positive, for binary).
        log_dir: if set, the values are also written there as TensorBoard
            scalars (step = 0-based epoch).
        plot_dir: if set, PNG plots of the PR and ROC curves (per class and
            micro) and the confusion matrix are written there at the end of
            training (``final_*.png``) and, with ``plot_every_n_epochs``,
            every that many epochs (``epoch_005_*.png``).
        threshold: decision threshold for binary / multilabel F1.
        per_class: also log one key per class and metric.
        from_logits: the model outputs logits; multiclass scores go through
            a float64 softmax, binary / multilabel ones are ranked as logits
            (a sigmoid would tie saturated scores) with the threshold mapped
            to logit space.
        batch_size: passed to ``model.predict`` for array data.
    """

    def __init__(
        self,
        validation_data,
        task="multiclass",
        prefix="val_",
        every_n_epochs=1,
        class_names=None,
        log_dir=None,
        plot_dir=None,
        *,
        threshold=0.5,
        per_class=False,
        from_logits=False,
        batch_size=None,
        plot_every_n_epochs=None,
    ):
        super().__init__()
        _validate.check_choice("task", task, _metrics.TASKS)
        _validate.check_int("every_n_epochs", every_n_epochs, minimum=1)
        for name, value in (("plot_every_n_epochs", plot_every_n_epochs), ("batch_size", batch_size)):
            if value is not None:
                _validate.check_int(name, value, minimum=1)
        _validate.check_bool("per_class", per_class)
        _validate.check_bool("from_logits", from_logits)
        _metrics._check_real("threshold", threshold)
        if from_logits and not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1) with from_logits=True; received {threshold!r}")
        if isinstance(class_names, str):
            raise TypeError(f"class_names must be None or a list of names; received the string {class_names!r}")
        if task == "binary" and class_names is not None and len(class_names) != 2:
            raise ValueError(
                f"class_names for task='binary' must be two names (negative, positive); received {len(class_names)}"
            )
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a string; received {prefix!r}")
        self._arrays, self._dataset = self._split_validation_data(validation_data)
        self.task = task
        self.prefix = prefix
        self.every_n_epochs = every_n_epochs
        self.class_names = None if class_names is None else [str(n) for n in class_names]
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.plot_dir = None if plot_dir is None else os.fspath(plot_dir)
        self.threshold = threshold
        self.per_class = per_class
        self.from_logits = from_logits
        self.batch_size = batch_size
        self.plot_every_n_epochs = plot_every_n_epochs
        self._writer = None

    @staticmethod
    def _split_validation_data(data):
        if isinstance(data, (tuple, list)):
            if len(data) != 2:
                raise ValueError(
                    "validation_data must be (x, y) or a dataset of (x, y) batches; received a "
                    f"{type(data).__name__} of length {len(data)} (sample weights are not supported)"
                )
            x, y = data[0], np.asarray(data[1])
            if hasattr(x, "shape"):  # arrays and tensors; a dict of inputs is left to Keras
                samples = [a.shape[0] if len(a.shape) else 0 for a in (x, y)]
                if samples[0] != samples[1]:
                    raise ValueError(f"validation_data x and y must have the same number of samples; received "
                                     f"{samples[0]} and {samples[1]}")
            return (x, y), None
        if not hasattr(data, "__iter__") or isinstance(data, (np.ndarray, str, dict)):
            raise ValueError(
                f"validation_data must be (x, y) or a dataset of (x, y) batches; received {type(data).__name__}"
            )
        if iter(data) is data:
            raise ValueError(
                "validation_data must be re-iterable (it is read every evaluated epoch); "
                f"received a one-shot iterator {type(data).__name__}"
            )
        return None, data

    # ------------------------------------------------------------ predictions

    def _predict(self):
        if self._arrays is not None:
            x, y_true = self._arrays
            y_score = _single_output(self.model.predict(x, batch_size=self.batch_size, verbose=0))
        else:
            scores, truths = [], []
            for batch in self._dataset:
                if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                    raise ValueError(
                        f"validation_data dataset must yield (x, y) batches; received {type(batch).__name__}"
                        + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
                    )
                scores.append(_single_output(self.model.predict_on_batch(batch[0])))
                truths.append(np.asarray(batch[1]))
            if not scores:
                raise ValueError("validation_data dataset yielded no batches")
            y_score, y_true = np.concatenate(scores), np.concatenate(truths)
        if self.from_logits and self.task == "multiclass":
            z = y_score.astype(np.float64)
            z = np.exp(z - z.max(axis=1, keepdims=True))
            y_score = z / z.sum(axis=1, keepdims=True)
        return y_true, y_score

    def _threshold(self):
        if self.from_logits and self.task != "multiclass":
            return math.log(self.threshold / (1 - self.threshold))
        return self.threshold

    def compute(self):
        """Predict ``validation_data`` with the current model; return the prefixed values."""
        return self._values(*self._predict())

    def _values(self, y_true, y_score):
        values = _metrics.classification_summary(
            y_true,
            y_score,
            task=self.task,
            threshold=self._threshold(),
            per_class=self.per_class and self.task != "binary",
            class_names=self.class_names if self.task != "binary" else None,
        )
        return {self.prefix + key: float(v) for key, v in values.items()}

    # ------------------------------------------------------------ Keras hooks

    def on_epoch_end(self, epoch, logs=None):
        evaluate = (epoch + 1) % self.every_n_epochs == 0
        plot = self.plot_dir is not None and self.plot_every_n_epochs and (epoch + 1) % self.plot_every_n_epochs == 0
        if not (evaluate or plot):
            return
        y_true, y_score = self._predict()
        if evaluate:
            values = self._values(y_true, y_score)
            if logs is not None:
                logs.update(values)
            self._write_scalars(values, epoch)
        if plot:
            self._save_plots(y_true, y_score, f"epoch_{epoch + 1:03d}")

    def on_train_end(self, logs=None):
        if self.plot_dir is not None:
            y_true, y_score = self._predict()
            self._save_plots(y_true, y_score, "final")
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _write_scalars(self, values, epoch):
        if self.log_dir is None:
            return
        import tensorflow as tf  # only TensorBoard logging needs it
        from tensorflow.core.framework import summary_pb2

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        # tf.summary.scalar lives in the tensorboard package, which tensorflow-cpu
        # does not install; tf.summary.write with the scalar plugin's metadata
        # writes the same record with TensorFlow alone.
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
            data_class=summary_pb2.DATA_CLASS_SCALAR,
        )
        with self._writer.as_default(step=epoch):
            for key, value in values.items():
                tf.summary.write(key, tf.constant(value, tf.float32), metadata=metadata)
        self._writer.flush()

    def _save_plots(self, y_true, y_score, tag):
        with warnings.catch_warnings():
            # The same undefined classes were already reported when computing the values.
            warnings.simplefilter("ignore", _metrics.UndefinedMetricWarning)
            save_plots(
                y_true,
                y_score,
                self.plot_dir,
                task=self.task,
                tag=tag,
                class_names=self.class_names,
                threshold=self._threshold(),
            )


# ---------------------------------------------------------------- plots


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
