"""Should keras_cnn turn TensorFlow's oneDNN on where TensorFlow leaves it off? Inference and training speed of
the same models with oneDNN off, on, and on restricted to AVX2 (what an AVX2-only AMD EPYC would run).

    python bench/bench_onednn.py                       # 3 settings x 3 rounds, default threads
    python bench/bench_onednn.py --rounds 5 --settings off on --json out.json

TensorFlow 2.21 turns its oneDNN custom operations on by default only on CPUs with AVX-512-class features; on
an AVX2-only CPU it runs Eigen's kernels unless ``TF_ENABLE_ONEDNN_OPTS=1``. The setting is read when TensorFlow
starts, so every measurement is a fresh worker process with its own ``TF_ENABLE_ONEDNN_OPTS`` (and, for
``on-avx2``, ``ONEDNN_MAX_CPU_ISA=AVX2``, which keeps oneDNN to the AVX2 kernels an EPYC of that kind has). The
settings alternate within each round, in a rotating order, so load from other processes hits all of them;
figures are medians over rounds of each worker's median call time, and ratios are per-round ratios to ``off``.

Workloads (batch 8, float32, ``tf.function``-compiled calls): ResNet-50 and MobileNetV2 inference at 224x224,
DenseNet-121 inference at 224x224, and a ResNet-18 SGD training step at 112x112.
"""

import argparse
import json
import os
import statistics
import sys
import time

from _common import cpu_name, print_result, worker_result

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = {"off": {"TF_ENABLE_ONEDNN_OPTS": "0"}, "on": {"TF_ENABLE_ONEDNN_OPTS": "1"},
            "on-avx2": {"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2"}}
WORKLOADS = ("resnet50 inference", "mobilenet_v2 inference", "densenet121 inference", "resnet18 training step")


def worker(calls):
    """Time each workload in this process; print one RESULT line of median seconds per call."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, ROOT)
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_cnn
    from keras_cnn._compat import onednn_enabled

    rng = np.random.default_rng(0)
    results = {}
    for workload in WORKLOADS:
        name, kind = workload.split(" ", 1)
        size = 112 if kind == "training step" else 224
        model = keras_cnn.build(name, input_shape=(size, size, 3), classes=1000)
        images = tf.constant(rng.uniform(0, 1, (8, size, size, 3)).astype("float32"))
        if kind == "inference":
            call = tf.function(lambda m=model, x=images: m(x, training=False))
        else:
            model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
            labels = rng.integers(0, 1000, 8)
            call = lambda m=model, x=images, y=labels: m.train_on_batch(x, y)  # noqa: E731
        for _ in range(2):
            call()
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        results[workload] = statistics.median(times)
    print_result({"onednn": onednn_enabled(), "seconds": results})


def _run(setting, calls):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA")}
    env.update(SETTINGS[setting])
    return worker_result([sys.executable, os.path.abspath(__file__), "--worker", "--calls", str(calls)], env,
                         setting)


def _table(rounds, settings):
    lines = ["| workload | " + " | ".join(f"{s} (s)" for s in settings) + " | "
             + " | ".join(f"{s} / off" for s in settings if s != "off") + " |",
             "| --- |" + " ---: |" * (2 * len(settings) - 1)]
    for workload in WORKLOADS:
        medians = [statistics.median(r[s]["seconds"][workload] for r in rounds) for s in settings]
        ratios = [statistics.median(r[s]["seconds"][workload] / r["off"]["seconds"][workload] for r in rounds)
                  for s in settings if s != "off"]
        lines.append(f"| {workload} | " + " | ".join(f"{m:.3f}" for m in medians) + " | "
                     + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", choices=tuple(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5, help="timed calls per workload in each worker")
    parser.add_argument("--json", help="also write the raw rounds to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.calls)
    settings = ["off"] + [s for s in args.settings if s != "off"]
    print(f"{cpu_name()}, {os.cpu_count()} cores; settings {', '.join(settings)}; {args.rounds} rounds", flush=True)
    rounds = []
    for index in range(args.rounds):
        shift = index % len(settings)
        rounds.append({s: _run(s, args.calls) for s in settings[shift:] + settings[:shift]})
        print(f"round {index + 1}: " + ", ".join(
            f"{s} {sum(rounds[-1][s]['seconds'].values()):.2f} s" for s in settings), flush=True)
    for setting in settings:
        if rounds[0][setting]["onednn"] != (setting != "off"):
            print(f"warning: setting {setting!r} ran with oneDNN {'on' if rounds[0][setting]['onednn'] else 'off'}")
    print(_table(rounds, settings))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"args": vars(args), "rounds": rounds}, out, indent=1)
    return None


if __name__ == "__main__":
    main()
