"""Training step time of ResNet-110 with stochastic depth against fixed depth (Huang et al. 2016: 0.73x).

    python bench/bench_stochastic_depth.py                       # batch 128, 20 rounds, drop_path_rate 0.5
    python bench/bench_stochastic_depth.py --batch 64 --rounds 10 --modes batch sample

Each arm is a ``resnet110`` compiled with SGD on one fixed CIFAR-sized batch. After warm-up steps (tracing), the
arms run interleaved, one step each per round in a rotating order, so load from other processes hits them
alike. Reported per arm: the median wall time and process CPU time (all threads) of a step, and the median over
rounds of the step's ratio to the fixed-depth step of the same round (the most robust figure on a shared machine). With drop_path_rate 0.5 the linear decay keeps on average
sum(p_l) / L = 0.745 of the 54 residual branches, so the floor is about 0.75x (the stem, head and shortcuts are
always computed). "batch" is the paper's mode, whose dropped branches are skipped by a ``tf.cond``; "sample"
(per-sample drop path) computes every branch and should cost about the same as fixed depth.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Run from a checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_cnn  # noqa: E402


def _model(name, rate, mode, seed):
    keras.utils.set_random_seed(seed)
    model = keras_cnn.build(name, classes=10, drop_path_rate=rate, drop_path_mode=mode)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    return model


def _step(model, images, labels):
    """(wall, CPU) seconds of one training step."""
    wall, cpu = time.perf_counter(), time.process_time()
    model.train_on_batch(images, labels)  # returns the loss as a NumPy value: the step has finished
    return time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet110")
    parser.add_argument("--batch", type=int, default=128, help="mini-batch size (the paper's 128)")
    parser.add_argument("--rounds", type=int, default=20, help="timed steps per arm")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per arm (tracing, allocation)")
    parser.add_argument("--rate", type=float, default=0.5, help="drop_path_rate = 1 - p_L (paper: 0.5)")
    parser.add_argument("--modes", nargs="+", default=["batch"], choices=["batch", "sample"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    images = rng.uniform(0, 1, (args.batch, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 10, args.batch)
    arms = {"fixed depth": _model(args.model, 0.0, "batch", args.seed)}
    for mode in args.modes:
        arms[f"drop_path_rate={args.rate} ({mode})"] = _model(args.model, args.rate, mode, args.seed)
    for model in arms.values():
        for _ in range(args.warmup):
            _step(model, images, labels)

    times = {label: [] for label in arms}
    order = list(arms)
    for round_index in range(args.rounds):
        shift = round_index % len(order)
        for label in order[shift:] + order[:shift]:
            times[label].append(_step(arms[label], images, labels))

    print(f"{args.model}, batch {args.batch}, {args.rounds} interleaved steps per arm, "
          f"{os.cpu_count()} CPU cores, keras {keras.__version__} ({keras.backend.backend()})")
    print(f"{'arm':34s} {'wall s/step':>11s} {'(IQR)':>15s} {'CPU s/step':>10s} {'wall ratio':>10s} "
          f"{'CPU ratio':>9s} {'paired wall ratio':>17s}")
    fixed = times["fixed depth"]
    for label, values in times.items():
        wall, cpu = [v[0] for v in values], [v[1] for v in values]
        q1, _, q3 = statistics.quantiles(wall, n=4)
        paired = statistics.median(v[0] / f[0] for v, f in zip(values, fixed))
        print(f"{label:34s} {statistics.median(wall):11.3f} {q1:7.3f}-{q3:<7.3f} {statistics.median(cpu):10.3f} "
              f"{statistics.median(wall) / statistics.median(v[0] for v in fixed):10.3f} "
              f"{statistics.median(cpu) / statistics.median(v[1] for v in fixed):9.3f} {paired:17.3f}")


if __name__ == "__main__":
    main()
