"""Per-class thresholds for multi-label outputs (keras_cnn.thresholds) and per-class thresholds in
keras_cnn.metrics, checked against brute force and scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import f1_score as sk_f1

from keras_cnn import metrics, thresholds


def validation(seed=0, n=300, k=4):
    """Labels with class-dependent base rates and noisy, miscalibrated scores (so 0.5 is not the best cut)."""
    rng = np.random.default_rng(seed)
    truth = (rng.uniform(size=(n, k)) < np.array([0.05, 0.2, 0.5, 0.8])[:k]).astype("int64")
    scores = 1 / (1 + np.exp(-(2.5 * truth - 2.0 + rng.normal(0, 1.0, (n, k)))))
    return truth, np.round(scores, 3)  # rounded: tied scores occur, as with real outputs


def test_f1_rule_reaches_the_best_f1_of_every_possible_cut():
    truth, scores = validation()
    chosen = thresholds.choose_thresholds(truth, scores, rule="f1")
    predicted = thresholds.predict_labels(scores, chosen)
    for k in range(truth.shape[1]):
        best = max(sk_f1(truth[:, k], scores[:, k] >= t, zero_division=0) for t in np.unique(scores[:, k]))
        assert sk_f1(truth[:, k], predicted[:, k], zero_division=0) == pytest.approx(best, abs=1e-12)
    # miscalibrated on purpose: the best cut is not 0.5 for every class
    assert not np.allclose(chosen, 0.5)


def test_thresholds_sit_between_validation_scores():
    truth, scores = validation(seed=1)
    for rule in thresholds.RULES:
        for k, t in enumerate(thresholds.choose_thresholds(truth, scores, rule=rule)):
            column = scores[:, k]
            assert not np.any(column == t) or t == column.min()  # a margin on both sides, unless all are kept


def test_break_even_predicts_as_many_as_there_are_positives_and_precision_equals_recall():
    rng = np.random.default_rng(2)
    truth = (rng.uniform(size=(200, 3)) < 0.3).astype(int)
    scores = rng.uniform(size=(200, 3))  # continuous: no ties
    chosen = thresholds.choose_thresholds(truth, scores, rule="break_even")
    predicted = thresholds.predict_labels(scores, chosen)
    assert (predicted.sum(0) == truth.sum(0)).all()
    for k in range(3):
        assert metrics.precision(truth[:, k], scores[:, k], threshold=chosen[k]) == pytest.approx(
            metrics.recall(truth[:, k], scores[:, k], threshold=chosen[k]))


def test_metrics_take_one_threshold_per_class_and_equal_scikit_learn():
    truth, scores = validation(seed=3)
    chosen = thresholds.choose_thresholds(truth, scores)
    predicted = thresholds.predict_labels(scores, chosen)
    for average in ("micro", "macro"):
        assert metrics.f1_score(truth, scores, task="multilabel", average=average, threshold=chosen) == \
            pytest.approx(sk_f1(truth, predicted, average=average, zero_division=0))
    summary = metrics.classification_summary(truth, scores, task="multilabel", threshold=chosen)
    assert summary["f1_micro"] == pytest.approx(sk_f1(truth, predicted, average="micro", zero_division=0))
    with pytest.raises(ValueError, match="4 finite numbers \\(one per class\\)"):
        metrics.f1_score(truth, scores, task="multilabel", threshold=[0.5, 0.5])
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        metrics.f1_score(truth[:, 0], scores[:, 0], threshold=[0.5])


def test_a_class_without_positives_keeps_the_default_with_a_warning():
    truth, scores = validation(seed=4)
    truth[:, 0] = 0
    with pytest.warns(UserWarning, match=r"class\(es\) \[0\] have no positive validation sample"):
        chosen = thresholds.choose_thresholds(truth, scores)
    assert chosen[0] == thresholds.DEFAULT_THRESHOLD


@pytest.mark.parametrize("call, fragment", [
    (lambda: thresholds.choose_thresholds([[0, 1]], [[0.2, 0.9]], rule="accuracy"), "rule must be one of"),
    (lambda: thresholds.choose_thresholds([[0, 2]], [[0.2, 0.9]]), "y_true must hold 0/1 labels"),
    (lambda: thresholds.choose_thresholds([0, 1], [0.2, 0.9]), "must both be \\(N, K\\)"),
    (lambda: thresholds.predict_labels([[0.2, 0.9]], [0.5, 0.5, 0.5]), "one number or one per class \\(2\\)"),
])
def test_arguments_are_checked(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()
