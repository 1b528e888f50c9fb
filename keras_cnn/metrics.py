"""Exact classification metrics on full prediction arrays (plain NumPy).

Every function takes ``y_true`` and ``y_score`` for one of three tasks:

* ``"binary"``: ``y_true`` holds 0/1, ``y_score`` the positive-class score,
  shape ``(N,)`` or ``(N, 1)``.
* ``"multiclass"``: ``y_true`` holds class indices ``0..K-1`` (shape ``(N,)``)
  or one-hot rows (shape ``(N, K)``, reduced with arg-max); ``y_score`` has
  shape ``(N, K)``.  Ranking metrics are one-vs-rest per class; thresholded
  metrics use the arg-max prediction.
* ``"multilabel"``: ``y_true`` and ``y_score`` both ``(N, K)``, labels 0/1;
  a label is predicted when its score >= ``threshold``.

(Over 350 lines on purpose: every public metric and curve is here with the one argument contract above; the
sorting and counting behind the curves is in :mod:`keras_cnn._curves`.)

``threshold`` (binary, multilabel; ignored for multiclass) follows the curves'
convention: a score equal to it counts as positive.  For multilabel it may also
be a sequence of K thresholds, one per class (e.g. chosen on validation data by
:func:`keras_cnn.thresholds.choose_thresholds`).

``average`` is ``"macro"`` (unweighted mean over classes), ``"micro"`` (all
class columns pooled into one binary problem) or ``None`` (per-class array).
It is ignored for ``task="binary"``, which always returns a float.

A class with no positive sample in ``y_true`` (for ROC-AUC also one with no
negative sample) has no defined value: it is NaN in per-class results, left
out of the macro average, and reported with an ``UndefinedMetricWarning``.
If no class remains the average is NaN.  Nothing raises for this, so a
validation split that misses a class cannot stop training.

Values equal scikit-learn's (``average_precision_score``, ``roc_auc_score``,
``f1_score(..., zero_division=0)``...) on the classes where both are defined;
scikit-learn is not needed at run time.
"""

import functools
import sys
import warnings

import numpy as np

from . import _curves, _validate

TASKS = ("binary", "multiclass", "multilabel")
AVERAGES = ("macro", "micro", None)

_NO_POSITIVE = "no positive sample"
_NO_POS_OR_NEG = "no positive or no negative sample"


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for some class (or all) on the given labels."""


class _Data:
    """Validated inputs: ``scores`` and boolean ``truth`` as (K, N), one row per class.

    ``scores`` is a transposed view of the caller's array: picking a strided
    column per class costs less than a contiguous copy of all N * K scores.
    """

    def __init__(self, task, scores, truth, labels=None):
        self.task = task
        self.scores = scores
        self.truth = truth
        self.labels = labels  # (N,) class indices, multiclass only

    @property
    def n_classes(self):
        return self.scores.shape[0]

    @functools.cached_property
    def arg_max(self):
        # Along the caller's contiguous axis, which is faster than axis 0 of the view.
        return np.argmax(self.scores.T, axis=1)

    def per_class(self):
        return [_curves.Ranked(s[t], s[~t]) for s, t in zip(self.scores, self.truth)]

    def pooled(self, per_class=None):
        """The micro problem; reuses the split of ``per_class`` if given."""
        if per_class is None:
            return _curves.Ranked(self.scores[self.truth], self.scores[~self.truth])
        return _curves.Ranked(
            np.concatenate([r.pos for r in per_class]), np.concatenate([r.neg for r in per_class])
        )

    def predicted(self, threshold):
        if self.task == "multiclass":
            return self.arg_max == np.arange(self.n_classes)[:, None]
        return self.scores >= np.reshape(threshold, (-1, 1))  # a scalar, or one per class (row)


# ---------------------------------------------------------------- validation


def _check_real(name, value, minimum=None):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or (minimum is not None and value <= minimum):
        bound = "" if minimum is None else f" > {minimum}"
        raise ValueError(f"{name} must be a finite number{bound}; received {value!r}")


def _check_threshold(threshold, data):
    """A finite number, or for multilabel one finite number per class."""
    if data.task != "multilabel" or np.ndim(threshold) == 0:
        return _check_real("threshold", threshold)
    values = np.asarray(threshold)
    if values.shape != (data.n_classes,) or not np.issubdtype(values.dtype, np.number) \
            or values.dtype == bool or not np.all(np.isfinite(values)):
        raise ValueError(f"threshold must be a finite number or, for task='multilabel', {data.n_classes} finite "
                         f"numbers (one per class); received {threshold!r}")
    return None


def _as_numeric(name, values):
    arr = np.asarray(values)
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be numeric; received dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{name} must be an array of samples; received a scalar")
    return arr


def _squeeze_column(arr):
    return arr[:, 0] if arr.ndim == 2 and arr.shape[1] == 1 else arr


def _zero_one(name, arr):
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        raise ValueError(f"{name} must contain only 0 and 1; received {_sample_of(arr[bad])}")
    return arr != 0


def _sample_of(bad_values):
    values = np.unique(bad_values)
    shown = ", ".join(str(v) for v in values[:5])
    return f"values [{shown}{', ...' if values.size > 5 else ''}]"


def _class_indices(y_true, n_classes):
    if y_true.ndim == 2:
        if not np.isfinite(y_true).all():
            raise ValueError("y_true must be finite; received NaN or infinite values")
        return np.argmax(y_true, axis=1)
    bad = (y_true < 0) | (y_true >= n_classes)
    if np.issubdtype(y_true.dtype, np.floating):
        bad |= y_true != np.round(y_true)
    if bad.any():
        raise ValueError(
            f"y_true must hold integer class indices in [0, {n_classes}) for a y_score "
            f"with {n_classes} columns; received {_sample_of(y_true[bad])}"
        )
    return y_true.astype(np.intp)


def _prepare(y_true, y_score, task):
    _validate.check_choice("task", task, TASKS)
    y_true = _as_numeric("y_true", y_true)
    y_score = _as_numeric("y_score", y_score)
    if y_true.shape[0] != y_score.shape[0]:
        raise ValueError(
            "y_true and y_score must have the same number of samples; "
            f"received {y_true.shape[0]} and {y_score.shape[0]}"
        )
    if y_true.shape[0] == 0:
        raise ValueError("y_true and y_score must not be empty; received 0 samples")
    if y_score.dtype == bool or not np.issubdtype(y_score.dtype, np.floating):
        y_score = y_score.astype(np.float64)
    elif y_score.dtype == np.float16:
        y_score = y_score.astype(np.float32)
    n_bad = y_score.size - np.count_nonzero(np.isfinite(y_score))
    if n_bad:
        raise ValueError(f"y_score must be finite; received {n_bad} NaN or infinite value(s)")

    if task == "binary":
        y_true, y_score = _squeeze_column(y_true), _squeeze_column(y_score)
        if y_score.ndim != 1 or y_true.ndim != 1:
            raise ValueError(
                "task='binary' needs y_true and y_score of shape (n_samples,) or (n_samples, 1); "
                f"received {y_true.shape} and {y_score.shape} (use task='multiclass' or 'multilabel')"
            )
        return _Data(task, y_score[None, :], _zero_one("y_true", y_true)[None, :])

    if y_score.ndim != 2 or y_score.shape[1] < (2 if task == "multiclass" else 1):
        raise ValueError(
            f"task={task!r} needs y_score of shape (n_samples, n_classes)"
            f"{' with n_classes >= 2' if task == 'multiclass' else ''}; received {y_score.shape}"
        )
    n_classes = y_score.shape[1]
    if task == "multilabel":
        ok = y_true.shape == y_score.shape
    else:
        y_true = _squeeze_column(y_true)
        ok = y_true.ndim == 1 or y_true.shape == y_score.shape
    if not ok:
        wanted = "(n_samples,) or " if task == "multiclass" else ""
        raise ValueError(
            f"task={task!r} needs y_true of shape {wanted}{y_score.shape} to match y_score; "
            f"received {y_true.shape}"
        )
    if task == "multilabel":
        return _Data(task, y_score.T, _zero_one("y_true", y_true).T)
    labels = _class_indices(y_true, n_classes)
    return _Data(task, y_score.T, labels == np.arange(n_classes)[:, None], labels)


# ---------------------------------------------------------------- averaging


def _warn(message):
    # Attribute the warning to the first caller outside this module, so it
    # shows the user's line (and the once-per-line filter works there).
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UndefinedMetricWarning, stacklevel=level)


def _average(name, per_class, average, reason):
    """Reduce per-class values (NaN = undefined) to what ``average`` asks for."""
    undefined = np.isnan(per_class)
    if undefined.any():
        fate = "NaN in the per-class result" if average is None else "left out of the macro average"
        _warn(f"{name}: class(es) {np.flatnonzero(undefined).tolist()} have {reason} in y_true; {fate}")
    if average is None:
        return per_class
    return float(per_class[~undefined].mean()) if not undefined.all() else float("nan")


def _single(name, value, reason, pooled):
    if np.isnan(value):
        where = "the pooled (micro) labels have" if pooled else "y_true has"
        _warn(f"{name} is undefined: {where} {reason}")
    return value


def _ranking(name, method, reason, y_true, y_score, task, average):
    data = _prepare(y_true, y_score, task)
    _validate.check_choice("average", average, AVERAGES)
    if task == "binary" or average == "micro":
        return _single(name, getattr(data.pooled(), method)(), reason, task != "binary")
    per_class = np.array([getattr(r, method)() for r in data.per_class()])
    return _average(name, per_class, average, reason)


def _counts(data, threshold):
    """Per-class (true positives, predicted positives, actual positives)."""
    if data.task == "multiclass":
        k = data.n_classes
        cm = np.bincount(data.labels * k + data.arg_max, minlength=k * k).reshape(k, k)
        return np.diag(cm), cm.sum(axis=0), cm.sum(axis=1)
    pred = data.predicted(threshold)
    tp = np.count_nonzero(pred & data.truth, axis=1)
    return tp, np.count_nonzero(pred, axis=1), np.count_nonzero(data.truth, axis=1)


def _from_counts(kind, tp, n_pred, n_true, beta=1.0):
    tp, n_pred, n_true = (np.asarray(a, dtype=np.float64) for a in (tp, n_pred, n_true))
    if kind == "precision":
        # A class never predicted gets precision 0 (scikit-learn's zero_division=0).
        num, den = tp, n_pred
    elif kind == "recall":
        num, den = tp, n_true
    else:
        # Count form of (1+b^2)PR/(b^2 P + R): defined whenever the class has positives.
        num, den = (1 + beta**2) * tp, beta**2 * n_true + n_pred
    value = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    value[n_true == 0] = np.nan
    return value


def _micro(kind, tp, n_pred, n_true, beta=1.0):
    """The metric on the counts of all classes pooled."""
    return float(_from_counts(kind, *(np.sum(a, keepdims=True) for a in (tp, n_pred, n_true)), beta=beta)[0])


def _thresholded(name, kind, y_true, y_score, task, average, threshold, beta=1.0):
    data = _prepare(y_true, y_score, task)
    _validate.check_choice("average", average, AVERAGES)
    _check_threshold(threshold, data)
    tp, n_pred, n_true = _counts(data, threshold)
    if task == "binary" or average == "micro":
        return _single(name, _micro(kind, tp, n_pred, n_true, beta), _NO_POSITIVE, task != "binary")
    return _average(name, _from_counts(kind, tp, n_pred, n_true, beta), average, _NO_POSITIVE)


# ---------------------------------------------------------------- ranking metrics


def roc_auc(y_true, y_score, *, task="binary", average="macro"):
    """Exact area under the ROC curve (tied scores count half, as scikit-learn)."""
    return _ranking("roc_auc", "roc_auc", _NO_POS_OR_NEG, y_true, y_score, task, average)


def pr_auc(y_true, y_score, *, task="binary", average="macro"):
    """Area under the PR curve as average precision, sum of (R_n - R_{n-1}) * P_n.

    Equal to scikit-learn's ``average_precision_score``: no interpolation
    between points, unlike ``keras.metrics.AUC(curve="PR")``, which also
    buckets the scores into 200 thresholds.
    """
    return _ranking("pr_auc", "average_precision", _NO_POSITIVE, y_true, y_score, task, average)


def break_even_point(y_true, y_score, *, task="binary", average="macro"):
    """Break-even point: the value where precision equals recall on the PR curve.

    That is the precision when exactly as many samples are predicted positive
    as there are positives; a cut-off inside a run of tied scores counts the
    run's positives pro rata.
    """
    return _ranking("break_even_point", "break_even_point", _NO_POSITIVE, y_true, y_score, task, average)


# ---------------------------------------------------------------- thresholded metrics


def fbeta_score(y_true, y_score, *, beta, task="binary", average="macro", threshold=0.5):
    """F-beta score of the thresholded (binary, multilabel) or arg-max (multiclass) prediction.

    Macro F-beta is the mean of the per-class F-beta scores (scikit-learn's
    definition), not the F-beta of macro precision and macro recall.  Micro
    pools the counts of all classes; for multiclass it equals the accuracy.
    beta > 1 weighs recall more, beta < 1 precision.
    """
    _check_real("beta", beta, minimum=0)
    return _thresholded(f"f{beta:g}_score", "fbeta", y_true, y_score, task, average, threshold, beta)


def f1_score(y_true, y_score, *, task="binary", average="macro", threshold=0.5):
    """F1 score, the harmonic mean of precision and recall; see ``fbeta_score``."""
    return _thresholded("f1_score", "fbeta", y_true, y_score, task, average, threshold)


def precision(y_true, y_score, *, task="binary", average="macro", threshold=0.5):
    """TP / (TP + FP) of the prediction; 0 for a class that is never predicted."""
    return _thresholded("precision", "precision", y_true, y_score, task, average, threshold)


def recall(y_true, y_score, *, task="binary", average="macro", threshold=0.5):
    """TP / (TP + FN) of the prediction (the true positive rate)."""
    return _thresholded("recall", "recall", y_true, y_score, task, average, threshold)


def accuracy(y_true, y_score, *, task="binary", threshold=0.5):
    """Share of samples predicted exactly right (multilabel: all K labels right)."""
    data = _prepare(y_true, y_score, task)
    _check_threshold(threshold, data)
    return float(np.mean(np.all(data.predicted(threshold) == data.truth, axis=0)))


def confusion_matrix(y_true, y_score, *, task="binary", threshold=0.5):
    """Counts with rows = true class, columns = predicted class.

    binary: ``[[TN, FP], [FN, TP]]``; multiclass: (K, K); multilabel: (K, 2, 2),
    one binary matrix per label as scikit-learn's ``multilabel_confusion_matrix``.
    """
    data = _prepare(y_true, y_score, task)
    _check_threshold(threshold, data)
    if task == "multiclass":
        k = data.n_classes
        return np.bincount(data.labels * k + data.arg_max, minlength=k * k).reshape(k, k)
    tp, n_pred, n_true = _counts(data, threshold)
    fp, fn = n_pred - tp, n_true - tp
    tn = data.truth.shape[1] - tp - fp - fn
    matrices = np.stack([tn, fp, fn, tp], axis=1).reshape(-1, 2, 2).astype(np.int64)
    return matrices[0] if task == "binary" else matrices


# ---------------------------------------------------------------- curves


def _curves_for(name, curve, y_true, y_score, task, average, drop_intermediate):
    data = _prepare(y_true, y_score, task)
    _validate.check_choice("average", average, ("micro", None))
    if task == "binary" or average == "micro":
        return curve(data.pooled(), drop_intermediate)
    curves = [curve(r, drop_intermediate) for r in data.per_class()]
    undefined = [k for k, arrays in enumerate(curves) if any(np.isnan(a).any() for a in arrays[:2])]
    if undefined:
        _warn(f"{name}: class(es) {undefined} lack positive or negative samples in y_true; their rates are NaN")
    return curves


def precision_recall_curve(y_true, y_score, *, task="binary", average=None, drop_intermediate=False):
    """(precision, recall, thresholds) as scikit-learn's ``precision_recall_curve``.

    For multiclass and multilabel, ``average=None`` gives a list with one
    such tuple per class and ``"micro"`` one tuple for the pooled problem.
    Recall is NaN for a class with no positive sample.
    """
    return _curves_for(
        "precision_recall_curve", _curves.pr_curve, y_true, y_score, task, average, drop_intermediate
    )


def roc_curve(y_true, y_score, *, task="binary", average=None, drop_intermediate=True):
    """(fpr, tpr, thresholds) as scikit-learn's ``roc_curve``; lists per class as
    ``precision_recall_curve``.  A rate with a zero denominator is NaN."""
    return _curves_for("roc_curve", _curves.roc_curve, y_true, y_score, task, average, drop_intermediate)


# ---------------------------------------------------------------- summary


def classification_summary(y_true, y_score, *, task="binary", threshold=0.5, per_class=False, class_names=None):
    """The headline values in one pass, sorting each class once.

    binary: ``pr_auc``, ``roc_auc``, ``f1``.  multiclass / multilabel:
    ``pr_auc_macro``, ``pr_auc_micro``, ``roc_auc_macro``, ``roc_auc_micro``,
    ``f1_macro``, ``f1_micro``; with ``per_class=True`` also
    ``pr_auc_<name>``, ``roc_auc_<name>``, ``f1_<name>`` per class, named by
    ``class_names`` or by index.
    """
    data = _prepare(y_true, y_score, task)
    _check_threshold(threshold, data)
    _validate.check_bool("per_class", per_class)
    tp, n_pred, n_true = _counts(data, threshold)
    ranked = data.per_class()
    pooled = ranked[0] if task == "binary" else data.pooled(ranked)
    micro_f1 = _micro("fbeta", tp, n_pred, n_true)
    if task == "binary":
        return {
            "pr_auc": _single("pr_auc", pooled.average_precision(), _NO_POSITIVE, False),
            "roc_auc": _single("roc_auc", pooled.roc_auc(), _NO_POS_OR_NEG, False),
            "f1": _single("f1", micro_f1, _NO_POSITIVE, False),
        }
    names = list(range(data.n_classes)) if class_names is None else list(class_names)
    if len(names) != data.n_classes:
        raise ValueError(
            f"class_names must have one name per class ({data.n_classes}); received {len(names)}"
        )
    per = {
        "pr_auc": (np.array([r.average_precision() for r in ranked]), pooled.average_precision(), _NO_POSITIVE),
        "roc_auc": (np.array([r.roc_auc() for r in ranked]), pooled.roc_auc(), _NO_POS_OR_NEG),
        "f1": (_from_counts("fbeta", tp, n_pred, n_true), micro_f1, _NO_POSITIVE),
    }
    summary = {}
    for metric, (values, micro, reason) in per.items():
        summary[f"{metric}_macro"] = _average(metric, values, "macro", reason)
        summary[f"{metric}_micro"] = _single(metric, micro, reason, True)
    if per_class:
        for metric, (values, _, _) in per.items():
            summary.update({f"{metric}_{name}": float(v) for name, v in zip(names, values)})
    return summary
