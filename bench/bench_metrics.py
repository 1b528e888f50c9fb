"""Time the six headline metrics on N samples x K classes, ours against scikit-learn.

    python bench/bench_metrics.py                  # 1,000,000 x 10, float32 scores
    python bench/bench_metrics.py --n 100000 --k 100 --dtype float64 --no-sklearn

The target is under 2 s for 1e6 x 10 (PR-AUC, ROC-AUC, F1; macro and micro),
computed together by ``classification_summary`` as the callback does.
"""

import argparse
import os
import sys
import time

import numpy as np

# Run from a checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_cnn import metrics  # noqa: E402


def _data(n, k, dtype, seed=0):
    """Softmax scores with some signal, as a trained classifier would emit."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)).astype(dtype)
    logits[np.arange(n), y] += 1.0
    scores = np.exp(logits)
    scores /= scores.sum(axis=1, keepdims=True)
    return y, scores


def _timed(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, times


def _sklearn_summary(y, scores):
    from sklearn import metrics as sk

    onehot = np.eye(scores.shape[1], dtype=np.int8)[y]
    pred = scores.argmax(axis=1)
    return {
        "pr_auc_macro": sk.average_precision_score(onehot, scores, average="macro"),
        "pr_auc_micro": sk.average_precision_score(onehot, scores, average="micro"),
        "roc_auc_macro": sk.roc_auc_score(onehot, scores, average="macro"),
        "roc_auc_micro": sk.roc_auc_score(onehot, scores, average="micro"),
        "f1_macro": sk.f1_score(y, pred, average="macro", labels=range(scores.shape[1]), zero_division=0),
        "f1_micro": sk.f1_score(y, pred, average="micro"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-sklearn", action="store_true", help="skip the (slow) scikit-learn reference")
    args = parser.parse_args()

    y, scores = _data(args.n, args.k, args.dtype)
    print(f"{args.n:,} samples x {args.k} classes, {args.dtype} scores")
    ours, times = _timed(lambda: metrics.classification_summary(y, scores, task="multiclass"), args.repeat)
    print(f"keras_cnn.metrics: first {times[0]:.3f} s, best {min(times):.3f} s  (six values, one call)")
    if args.no_sklearn:
        return
    reference, ref_times = _timed(lambda: _sklearn_summary(y, scores), 1)
    print(f"scikit-learn:      {ref_times[0]:.3f} s  ({ref_times[0] / min(times):.1f}x ours)")
    worst = max(abs(ours[key] - reference[key]) for key in reference)
    print(f"largest difference from scikit-learn: {worst:.2e}")
    for key in reference:
        print(f"  {key:14s} {ours[key]:.12f}  {reference[key]:.12f}")


if __name__ == "__main__":
    main()
