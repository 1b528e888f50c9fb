"""keras_cnn.metrics against scikit-learn (the test-only reference) and by hand."""

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn import metrics as sk

from keras_cnn import metrics as m

EXACT = {"rtol": 0, "atol": 1e-9}
SEEDS = range(5)


def _onehot(labels, n_classes):
    return np.eye(n_classes, dtype=int)[labels]


def _multiclass(seed, n=400, k=5, decimals=2):
    """Labels and softmax-like scores with some signal; rounding makes ties."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, np.round(scores, decimals) if decimals is not None else scores


def _multilabel(seed, n=300, k=4, decimals=2):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < rng.uniform(0.1, 0.6, k)).astype(int)
    scores = np.clip(0.3 * y + rng.random((n, k)) * 0.7, 0, 1)
    return y, np.round(scores, decimals)


def _binary(seed, n=500, decimals=1):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    return y, np.round(0.25 * y + 0.75 * rng.random(n), decimals)


# ---------------------------------------------------------------- ranking vs scikit-learn


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("decimals", [2, None])
def test_multiclass_ranking_matches_sklearn(seed, decimals):
    y, s = _multiclass(seed, decimals=decimals)
    y1 = _onehot(y, s.shape[1])
    for ours, ref in ((m.pr_auc, sk.average_precision_score), (m.roc_auc, sk.roc_auc_score)):
        per_class = ours(y, s, task="multiclass", average=None)
        assert per_class.shape == (s.shape[1],)
        np.testing.assert_allclose(per_class, ref(y1, s, average=None), **EXACT)
        for average in ("macro", "micro"):
            assert ours(y, s, task="multiclass", average=average) == pytest.approx(ref(y1, s, average=average), abs=1e-9)
    if decimals is None:  # scikit-learn's one-vs-rest mode insists on rows summing to 1
        assert m.roc_auc(y, s, task="multiclass") == pytest.approx(sk.roc_auc_score(y, s, multi_class="ovr"), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_multilabel_ranking_matches_sklearn(seed):
    y, s = _multilabel(seed)
    for ours, ref in ((m.pr_auc, sk.average_precision_score), (m.roc_auc, sk.roc_auc_score)):
        np.testing.assert_allclose(ours(y, s, task="multilabel", average=None), ref(y, s, average=None), **EXACT)
        for average in ("macro", "micro"):
            assert ours(y, s, task="multilabel", average=average) == pytest.approx(ref(y, s, average=average), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_matches_sklearn(seed):
    y, s = _binary(seed)
    pred = (s >= 0.5).astype(int)
    assert m.pr_auc(y, s) == pytest.approx(sk.average_precision_score(y, s), abs=1e-9)
    assert m.roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-9)
    assert m.f1_score(y, s) == pytest.approx(sk.f1_score(y, pred), abs=1e-9)
    assert m.fbeta_score(y, s, beta=2) == pytest.approx(sk.fbeta_score(y, pred, beta=2), abs=1e-9)
    assert m.precision(y, s) == pytest.approx(sk.precision_score(y, pred), abs=1e-9)
    assert m.recall(y, s) == pytest.approx(sk.recall_score(y, pred), abs=1e-9)
    assert m.accuracy(y, s) == pytest.approx(sk.accuracy_score(y, pred), abs=1e-12)
    np.testing.assert_array_equal(m.confusion_matrix(y, s), sk.confusion_matrix(y, pred))
    # Column shapes as Keras emits them, and average ignored, give the same floats.
    assert m.pr_auc(y[:, None], s[:, None], average=None) == m.pr_auc(y, s)


def test_float32_scores_give_the_float64_result():
    y, s = _multiclass(7, decimals=None)
    s32 = s.astype(np.float32)
    for fn in (m.pr_auc, m.roc_auc, m.f1_score):
        assert fn(y, s32, task="multiclass") == pytest.approx(fn(y, s32.astype(np.float64), task="multiclass"), abs=1e-12)


# ---------------------------------------------------------------- thresholded vs scikit-learn


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_thresholded_matches_sklearn(seed):
    y, s = _multiclass(seed, k=6)
    s[:, 5] = 0  # class 5 is never the arg-max: its precision is 0, as zero_division=0
    pred, labels = s.argmax(axis=1), list(range(6))
    cases = [
        (m.f1_score, {}, sk.f1_score),
        (m.precision, {}, sk.precision_score),
        (m.recall, {}, sk.recall_score),
        (m.fbeta_score, {"beta": 0.5}, sk.fbeta_score),
    ]
    for ours, kw, ref in cases:
        for average in ("macro", "micro", None):
            expected = ref(y, pred, labels=labels, average=average, zero_division=0, **kw)
            np.testing.assert_allclose(ours(y, s, task="multiclass", average=average, **kw), expected, **EXACT)
    assert m.f1_score(y, s, task="multiclass", average="micro") == pytest.approx(sk.accuracy_score(y, pred))
    assert m.accuracy(y, s, task="multiclass") == pytest.approx(sk.accuracy_score(y, pred))
    np.testing.assert_array_equal(m.confusion_matrix(y, s, task="multiclass"), sk.confusion_matrix(y, pred, labels=labels))


@pytest.mark.parametrize("seed", SEEDS)
def test_multilabel_thresholded_matches_sklearn(seed):
    y, s = _multilabel(seed)
    pred = (s >= 0.6).astype(int)
    for ours, ref in ((m.f1_score, sk.f1_score), (m.precision, sk.precision_score), (m.recall, sk.recall_score)):
        for average in ("macro", "micro", None):
            expected = ref(y, pred, average=average, zero_division=0)
            np.testing.assert_allclose(ours(y, s, task="multilabel", average=average, threshold=0.6), expected, **EXACT)
    assert m.accuracy(y, s, task="multilabel", threshold=0.6) == pytest.approx(sk.accuracy_score(y, pred))
    np.testing.assert_array_equal(
        m.confusion_matrix(y, s, task="multilabel", threshold=0.6), sk.multilabel_confusion_matrix(y, pred)
    )


def test_multiclass_accepts_one_hot_labels():
    y, s = _multiclass(3)
    for fn in (m.pr_auc, m.roc_auc, m.f1_score):
        assert fn(_onehot(y, 5), s, task="multiclass") == fn(y, s, task="multiclass")
    assert m.f1_score(y.astype(float)[:, None], s, task="multiclass") == m.f1_score(y, s, task="multiclass")


# ---------------------------------------------------------------- curves


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("drop", [False, True])
def test_binary_curves_match_sklearn(seed, drop):
    y, s = _binary(seed, decimals=2)
    for got, ref in zip(m.precision_recall_curve(y, s, drop_intermediate=drop),
                        sk.precision_recall_curve(y, s, drop_intermediate=drop)):
        np.testing.assert_allclose(got, ref, **EXACT)
    for got, ref in zip(m.roc_curve(y, s, drop_intermediate=drop), sk.roc_curve(y, s, drop_intermediate=drop)):
        np.testing.assert_allclose(got, ref, **EXACT)


def test_per_class_and_micro_curves_match_sklearn():
    y, s = _multiclass(1)
    y1 = _onehot(y, 5)
    curves = m.roc_curve(y, s, task="multiclass")
    assert len(curves) == 5
    for k, curve in enumerate(curves):
        for got, ref in zip(curve, sk.roc_curve(y1[:, k], s[:, k])):
            np.testing.assert_allclose(got, ref, **EXACT)
    for got, ref in zip(m.precision_recall_curve(y, s, task="multiclass", average="micro"),
                        sk.precision_recall_curve(y1.ravel(), s.ravel())):
        np.testing.assert_allclose(got, ref, **EXACT)


# ---------------------------------------------------------------- undefined classes


def test_class_without_positives_is_left_out_of_macro_with_warning():
    y, s = _multiclass(2, k=4)
    y[y == 2] = 0
    present = [0, 1, 3]
    y1 = _onehot(y, 4)
    for ours, ref in ((m.pr_auc, sk.average_precision_score), (m.roc_auc, sk.roc_auc_score)):
        with pytest.warns(m.UndefinedMetricWarning, match=r"class\(es\) \[2\] have no positive"):
            per_class = ours(y, s, task="multiclass", average=None)
        assert np.isnan(per_class[2])
        with pytest.warns(m.UndefinedMetricWarning, match="left out of the macro average"):
            macro = ours(y, s, task="multiclass")
        assert macro == pytest.approx(ref(y1[:, present], s[:, present]), abs=1e-9)
    with pytest.warns(m.UndefinedMetricWarning):
        f1 = m.f1_score(y, s, task="multiclass")
    assert f1 == pytest.approx(sk.f1_score(y, s.argmax(axis=1), labels=present, average="macro", zero_division=0))


def test_roc_needs_negatives_but_pr_does_not():
    y, s = _multilabel(0)
    y[:, 1] = 1
    with pytest.warns(m.UndefinedMetricWarning, match=r"\[1\] have no positive or no negative"):
        roc = m.roc_auc(y, s, task="multilabel", average=None)
    assert np.isnan(roc[1]) and not np.isnan(roc[[0, 2, 3]]).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert m.pr_auc(y, s, task="multilabel", average=None)[1] == 1.0


def test_nothing_defined_gives_nan():
    y = np.zeros((6, 3), dtype=int)
    s = np.random.default_rng(0).random((6, 3))
    for fn in (m.pr_auc, m.roc_auc, m.f1_score, m.break_even_point):
        with pytest.warns(m.UndefinedMetricWarning):
            assert np.isnan(fn(y, s, task="multilabel"))
        with pytest.warns(m.UndefinedMetricWarning, match="micro"):
            assert np.isnan(fn(y, s, task="multilabel", average="micro"))
    with pytest.warns(m.UndefinedMetricWarning, match="y_true has no positive"):
        assert np.isnan(m.pr_auc([0, 0, 0], [0.1, 0.5, 0.9]))
    with pytest.warns(m.UndefinedMetricWarning, match="no positive or no negative"):
        assert np.isnan(m.roc_auc([1, 1, 1], [0.1, 0.5, 0.9]))


# ---------------------------------------------------------------- break-even point


def test_break_even_point_by_hand():
    # Six ranked samples, three positive: the top three hold two -> P = R = 2/3.
    assert m.break_even_point([1, 0, 1, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]) == pytest.approx(2 / 3)
    # The cut-off (2 samples) splits the tie {0.5: one positive, one negative}:
    # 1 positive above it plus half of the tied one -> 1.5 / 2.
    assert m.break_even_point([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.75)
    assert m.break_even_point([0, 1, 1], [0.1, 0.8, 0.9]) == 1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_break_even_point_is_where_precision_equals_recall(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(200) < 0.3).astype(int)
    s = rng.random(200) + 0.2 * y  # no ties
    order = np.argsort(-s)
    n_pos = y.sum()
    top = y[order][:n_pos].sum()
    bep = m.break_even_point(y, s)
    assert bep == pytest.approx(top / n_pos)
    precision, recall, _ = sk.precision_recall_curve(y, s)
    assert np.any(np.isclose(precision, bep) & np.isclose(recall, bep))


def test_break_even_point_averages():
    y, s = _multiclass(4, decimals=None)
    per_class = m.break_even_point(y, s, task="multiclass", average=None)
    expected = [m.break_even_point((y == k).astype(int), s[:, k]) for k in range(5)]
    np.testing.assert_allclose(per_class, expected, **EXACT)
    assert m.break_even_point(y, s, task="multiclass") == pytest.approx(np.mean(expected))
    micro = m.break_even_point(_onehot(y, 5).ravel(), s.ravel())
    assert m.break_even_point(y, s, task="multiclass", average="micro") == pytest.approx(micro)


# ---------------------------------------------------------------- summary


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_summary_equals_the_single_functions(task):
    y, s = _multiclass(5) if task == "multiclass" else _multilabel(5)
    out = m.classification_summary(y, s, task=task, per_class=True, class_names="abcde"[: s.shape[1]])
    for name, fn in (("pr_auc", m.pr_auc), ("roc_auc", m.roc_auc), ("f1", m.f1_score)):
        for average in ("macro", "micro"):
            assert out[f"{name}_{average}"] == pytest.approx(fn(y, s, task=task, average=average), abs=1e-12)
        assert out[f"{name}_b"] == pytest.approx(fn(y, s, task=task, average=None)[1], abs=1e-12)
    assert list(out)[:6] == ["pr_auc_macro", "pr_auc_micro", "roc_auc_macro", "roc_auc_micro", "f1_macro", "f1_micro"]


def test_binary_summary_keys():
    y, s = _binary(0)
    out = m.classification_summary(y, s)
    assert out == {"pr_auc": m.pr_auc(y, s), "roc_auc": m.roc_auc(y, s), "f1": m.f1_score(y, s)}


# ---------------------------------------------------------------- packaging


def test_metrics_module_imports_no_framework():
    """metrics.py stays plain NumPy; the package __init__ is bypassed on purpose."""
    package = os.path.dirname(os.path.abspath(m.__file__))
    code = textwrap.dedent(f"""
        import sys, types
        pkg = types.ModuleType("keras_cnn")
        pkg.__path__ = [{package!r}]
        sys.modules["keras_cnn"] = pkg
        import keras_cnn.metrics
        heavy = sorted({{n.split(".")[0] for n in sys.modules}} & {{"tensorflow", "keras", "sklearn", "matplotlib"}})
        assert not heavy, heavy
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
