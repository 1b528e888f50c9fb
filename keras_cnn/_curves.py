"""Sorting kernels for one binary ranking problem (private to keras_cnn.metrics).

Every value here comes from the scores of the positive and of the negative
samples, each sorted once with ``np.sort``.  Counting with ``searchsorted``
instead of arg-sorting the interleaved scores (scikit-learn's
``_binary_clf_curve``) gives the same tie handling -- a run of equal scores
is one threshold -- and is several times faster, because ``np.sort`` of
values is SIMD-accelerated while a stable ``argsort`` is not.
"""

import numpy as np


class Ranked:
    """Scores of one binary problem, sorted, with the counts the metrics share.

    ``values`` are the distinct scores of the positive samples (ascending),
    ``count`` how many positives hold each, ``pos_at_or_above`` /
    ``neg_below`` / ``neg_tied`` how many positives score >= each value and
    how many negatives score below / exactly at it.
    """

    def __init__(self, pos_scores, neg_scores):
        # Both arrays are fresh copies (boolean indexing), so sorting them in
        # place saves a copy of up to N*K values in the pooled problem.
        self.pos, self.neg = pos_scores, neg_scores
        self.pos.sort()
        self.neg.sort()
        self.n_pos = self.pos.size
        self.n_neg = self.neg.size
        if self.n_pos:
            new = np.empty(self.n_pos, dtype=bool)
            new[0] = True
            np.not_equal(self.pos[1:], self.pos[:-1], out=new[1:])
            first = np.flatnonzero(new)
        else:
            first = np.zeros(0, dtype=np.intp)
        self.values = self.pos[first]
        self.count = np.diff(np.append(first, self.n_pos))
        self.pos_at_or_above = self.n_pos - first
        self.neg_below = np.searchsorted(self.neg, self.values, "left")
        self.neg_tied = np.zeros_like(self.neg_below)
        if self.n_neg:
            # Continuous scores rarely tie with a negative: search again only where one does.
            tied = self.neg[np.minimum(self.neg_below, self.n_neg - 1)] == self.values
            right = np.searchsorted(self.neg, self.values[tied], "right")
            self.neg_tied[tied] = right - self.neg_below[tied]

    def average_precision(self):
        """Sum over thresholds of (R_n - R_{n-1}) * P_n; NaN without positives."""
        if not self.n_pos:
            return np.nan
        tp = self.pos_at_or_above
        fp = self.n_neg - self.neg_below
        # Recall only moves at scores that some positive holds, so the other
        # thresholds add zero and need not be visited.
        return float(np.sum(self.count * (tp / (tp + fp))) / self.n_pos)

    def roc_auc(self):
        """Area under the ROC curve; NaN without positives or negatives.

        The trapezoidal area equals the Mann-Whitney statistic with a tie
        counted as half a win, which sums exactly in integers.
        """
        if not self.n_pos or not self.n_neg:
            return np.nan
        wins = np.sum(self.count * (2 * self.neg_below + self.neg_tied))
        return float(wins / (2.0 * self.n_pos * self.n_neg))

    def break_even_point(self):
        """Precision (= recall) at the cut-off predicting ``n_pos`` samples positive.

        Precision equals recall exactly when as many samples are predicted
        positive as there are positives.  If that cut-off falls inside a run
        of tied scores, the run's positives count pro rata: the curve is
        interpolated linearly in (predicted, true positive) count space.
        """
        if not self.n_pos:
            return np.nan
        tp_after = self.pos_at_or_above[::-1]
        tp_before = tp_after - self.count[::-1]
        neg_after = (self.n_neg - self.neg_below)[::-1]
        neg_before = neg_after - self.neg_tied[::-1]
        predicted = np.column_stack([tp_before + neg_before, tp_after + neg_after]).ravel()
        true_pos = np.column_stack([tp_before, tp_after]).ravel()
        tp_at_cut = np.interp(self.n_pos, np.append(0, predicted), np.append(0, true_pos))
        return float(tp_at_cut / self.n_pos)

    def threshold_counts(self):
        """Distinct thresholds (descending) with true and false positives at each.

        The same arrays as scikit-learn's ``confusion_matrix_at_thresholds``:
        a sample counts as positive when its score >= the threshold.
        """
        every = np.concatenate([self.pos, self.neg])
        every.sort()
        keep = np.empty(every.size, dtype=bool)
        keep[-1:] = True
        np.not_equal(every[:-1], every[1:], out=keep[:-1])
        thresholds = every[keep][::-1]
        tps = (self.n_pos - np.searchsorted(self.pos, thresholds, "left")).astype(np.float64)
        fps = (self.n_neg - np.searchsorted(self.neg, thresholds, "left")).astype(np.float64)
        return thresholds, tps, fps


def pr_curve(ranked, drop_intermediate=False):
    """(precision, recall, thresholds) as scikit-learn's ``precision_recall_curve``.

    Recall is NaN throughout when there is no positive sample (scikit-learn
    sets it to 1 with a warning; an undefined value should look undefined).
    """
    thresholds, tps, fps = ranked.threshold_counts()
    if drop_intermediate and tps.size > 2:
        # Inside a vertical run (recall unchanged) only the ends are drawn.
        keep = np.concatenate([[True], (np.diff(tps[:-1]) != 0) | (np.diff(tps[1:]) != 0), [True]])
        thresholds, tps, fps = thresholds[keep], tps[keep], fps[keep]
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted != 0)
    recall = tps / ranked.n_pos if ranked.n_pos else np.full_like(tps, np.nan)
    return (
        np.append(precision[::-1], 1.0),
        np.append(recall[::-1], 0.0),
        thresholds[::-1],
    )


def roc_curve(ranked, drop_intermediate=True):
    """(fpr, tpr, thresholds) as scikit-learn's ``roc_curve``.

    A rate whose denominator is zero (no negatives / no positives) is NaN.
    """
    thresholds, tps, fps = ranked.threshold_counts()
    if drop_intermediate and tps.size > 2:
        # A point collinear with its neighbours changes neither the plot nor the area.
        corner = (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0)
        keep = np.concatenate([[True], corner, [True]])
        thresholds, tps, fps = thresholds[keep], tps[keep], fps[keep]
    tps = np.append(0.0, tps)
    fps = np.append(0.0, fps)
    thresholds = np.append(np.inf, thresholds.astype(np.float64))
    fpr = fps / ranked.n_neg if ranked.n_neg else np.full_like(fps, np.nan)
    tpr = tps / ranked.n_pos if ranked.n_pos else np.full_like(tps, np.nan)
    return fpr, tpr, thresholds
