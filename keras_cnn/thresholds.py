"""Per-class decision thresholds for multi-label classification, chosen on validation data.

A multi-label model's sigmoid outputs are independent probabilities; a label is predicted when its score reaches
the class's threshold. 0.5 for every class is rarely best: rare labels and miscalibrated outputs want their own
cut-off. Seed 000 §1.1 (precision/recall on the confidence threshold) gives the two rules offered here:

* ``"f1"``: the threshold that maximises the class's F1 on the validation set;
* ``"break_even"``: the precision/recall break-even point, where as many samples are predicted positive as there
  are positives (then precision equals recall).

:func:`attach` stores the thresholds in a model made by ``keras_cnn.build``, so they travel in its ``.keras`` file
(:func:`attached` reads them back); ``keras-cnn train --task multilabel`` does this and writes them into the
preprocessing record that evaluation, prediction and the exports use.

Each threshold is placed halfway between the validation score it keeps and the next lower one, so it predicts the
validation set exactly as the chosen cut-off does while leaving a margin on both sides for unseen scores.
"""

import warnings

import numpy as np

from keras_cnn import _validate

RULES = ("f1", "break_even")
DEFAULT_THRESHOLD = 0.5  # for a class without a positive validation sample: no rule is defined there


def choose_thresholds(y_true, y_score, *, rule="f1"):
    """One threshold per class (float64 array of K) from validation labels ``y_true`` (N, K) of 0/1 and scores
    ``y_score`` (N, K); ``rule`` is ``"f1"`` or ``"break_even"``. A class with no positive (or, for F1, no
    negative either way defined) keeps ``DEFAULT_THRESHOLD`` with a warning naming it. Use the result as
    ``threshold=`` of :mod:`keras_cnn.metrics` and :func:`predict_labels`."""
    _validate.check_choice("rule", rule, RULES)
    truth, scores = _checked(y_true, y_score)
    chosen, undefined = [], []
    for k in range(truth.shape[1]):
        positives = truth[:, k]
        if not positives.any():
            undefined.append(k)
            chosen.append(DEFAULT_THRESHOLD)
            continue
        chooser = _best_f1 if rule == "f1" else _break_even
        chosen.append(chooser(scores[:, k], positives))
    if undefined:
        warnings.warn(f"choose_thresholds: class(es) {undefined} have no positive validation sample; their "
                      f"threshold stays {DEFAULT_THRESHOLD}.", stacklevel=2)
    return np.asarray(chosen, dtype="float64")


def attach(model, thresholds):
    """Store one decision threshold per class (numbers in [0, 1]) in ``model``, a multi-label model made by
    ``keras_cnn.build`` (its outputs independent sigmoid probabilities); ``model.save`` keeps them and
    :func:`attached` reads them, also after ``keras.saving.load_model``. None removes them. Returns ``model``."""
    from keras_cnn.model import CNNModel, model_config

    if not isinstance(model, CNNModel):
        raise TypeError(f"model must be a model made by keras_cnn.build (it keeps the thresholds in its config); "
                        f"received {type(model).__name__}.")
    if thresholds is not None:
        config = model_config(model)
        activation = config.get("classifier_activation")
        if not config.get("include_top", True) or activation != "sigmoid":
            raise ValueError(f"thresholds decide a multi-label model's sigmoid outputs; model {model.name!r} has "
                             f"include_top={config.get('include_top')} and classifier_activation={activation!r}.")
        limits = np.asarray(thresholds, dtype="float64")
        if limits.shape != (config["classes"],) or not np.all((limits >= 0) & (limits <= 1)):
            raise ValueError(f"thresholds must be {config['classes']} numbers in [0, 1] (one per class); received "
                             f"shape {limits.shape} with values {np.asarray(thresholds).tolist()!r:.200}.")
        thresholds = limits.tolist()
    model.set_thresholds(thresholds)
    return model


def attached(model):
    """The per-class thresholds stored in ``model`` by :func:`attach` (float64 array), or None."""
    from keras_cnn.model import decision_thresholds

    values = decision_thresholds(model)
    return None if values is None else np.asarray(values, dtype="float64")


def predict_labels(y_score, thresholds):
    """Boolean (N, K): each label whose score reaches its class's threshold (a scalar applies to every class)."""
    scores = np.asarray(y_score, dtype="float64")
    if scores.ndim != 2:
        raise ValueError(f"y_score must be (N, K) scores; received shape {scores.shape}.")
    limits = np.asarray(thresholds, dtype="float64")
    if limits.ndim > 1 or (limits.ndim == 1 and limits.shape[0] != scores.shape[1]):
        raise ValueError(f"thresholds must be one number or one per class ({scores.shape[1]}); received shape "
                         f"{limits.shape}.")
    return scores >= limits


def _checked(y_true, y_score):
    truth, scores = np.asarray(y_true), np.asarray(y_score, dtype="float64")
    if truth.ndim != 2 or truth.shape != scores.shape:
        raise ValueError(f"y_true and y_score must both be (N, K); received shapes {truth.shape} and "
                         f"{scores.shape}.")
    if not np.isin(truth, (0, 1)).all():
        raise ValueError("y_true must hold 0/1 labels (multi-hot rows).")
    if not np.all(np.isfinite(scores)):
        raise ValueError("y_score must be finite.")
    return truth.astype(bool), scores


def _cut(descending, keep):
    """Halfway between the ``keep``-th highest score and the next lower one; the lowest score when all are kept."""
    if keep == len(descending):
        return float(descending[-1])
    return float((descending[keep - 1] + descending[keep]) / 2)


def _best_f1(scores, positives):
    """The cut-off with the highest F1: predicting the top ``n`` scores for each ``n`` at a change of score."""
    order = np.argsort(-scores, kind="stable")
    descending, hits = scores[order], positives[order]
    tp = np.cumsum(hits)
    # only cut where the score changes: tied scores are all in or all out
    ends = np.flatnonzero(np.append(descending[1:] != descending[:-1], True)) + 1
    f1 = 2 * tp[ends - 1] / (ends + positives.sum())
    return _cut(descending, int(ends[int(np.argmax(f1))]))


def _break_even(scores, positives):
    """Predict as many samples as there are positives (tied scores at the boundary: all of them)."""
    descending = np.sort(scores)[::-1]
    count = int(positives.sum())
    boundary = descending[count - 1]
    keep = int(np.count_nonzero(descending >= boundary))
    return _cut(descending, keep)
