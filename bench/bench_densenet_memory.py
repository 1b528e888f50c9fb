"""Peak memory and step time of training a DenseNet, plain against ``memory_efficient=True``.

    python bench/bench_densenet_memory.py                          # DenseNet-121, 224x224, batch 8, 3 rounds
    python bench/bench_densenet_memory.py --size 112 --batch 16 --rounds 5 --json out.json

Every run is a fresh subprocess (one mode, one model) and the modes alternate, plain first in even rounds and
efficient first in odd ones, so drift in the machine's load hits both; figures are medians over rounds and
the ratios are medians of the per-round (paired) ratios.

Memory is measured two ways, both inside the worker:

* ``tensor peak``: TensorFlow's own count of the bytes held by its CPU allocator, the high-water mark of the
  training steps (``tf.config.experimental.reset_memory_stats('CPU:0')`` after the warm-up steps, then
  ``get_memory_info('CPU:0')['peak']``). TensorFlow keeps these statistics only in its BFC allocator, its CPU
  allocator when oneDNN is on; workers run with ``TF_CPU_ALLOCATOR_USE_BFC=true``, which selects it with oneDNN
  off as well (TensorFlow's default on AVX2-only CPUs), so the figure exists on every machine. It is every live tensor: weights, optimizer slots, gradients and the
  activations kept for the backward pass, the analogue of the GPU memory the paper reports.
* ``process peak``: the process's peak resident set (``VmHWM`` in /proc/self/status) over the whole run, and
  its growth from just before the first training step. TensorFlow's CPU allocator keeps freed memory in its
  pool (RSS never goes down inside a process), which is why each mode needs its own process; this figure also
  holds the runtime, the traced graphs and pool fragmentation, so it is the machine-level cost, not the
  tensors alone. (tracemalloc sees none of it: TensorFlow allocates outside Python's allocator.)

``--onednn on off`` runs the workers with ``TF_ENABLE_ONEDNN_OPTS=1`` and ``=0`` in turn (default: TensorFlow's
choice for this CPU), each setting reported on its own; the step time and the tensor peak both depend on it.

Step time is the wall time of ``train_on_batch`` (SGD with Nesterov momentum, the paper's optimiser) after
``--warmup`` steps (the first one traces the graph), median over ``--steps``; the CPU time of the process over
the same step (``time.process_time``, all threads) is reported too, as it is far less disturbed than wall
time when other processes share the cores.
"""

import argparse
import json
import os
import statistics
import sys
import time

from _common import machine, print_result, worker_result

# Run from a checkout without installing the package.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ("plain", "efficient")
MIB = 2.0**20


def _status_mib(key):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def worker(args):
    """One mode in this process: build, compile, warm up, then time ``args.steps`` training steps."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, ROOT)
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_cnn

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    model = keras_cnn.build(args.model, input_shape=(args.size, args.size, 3), classes=args.classes,
                            memory_efficient=args.worker == "efficient")
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.uniform(0.0, 1.0, (args.batch, args.size, args.size, 3)).astype("float32")
    labels = rng.integers(0, args.classes, args.batch)
    rss_before = _status_mib("VmRSS:")
    for _ in range(args.warmup):
        model.train_on_batch(images, labels)
    tf.config.experimental.reset_memory_stats("CPU:0")
    times, cpu_times = [], []
    for _ in range(args.steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        model.train_on_batch(images, labels)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    hwm = _status_mib("VmHWM:")
    from keras_cnn._compat import onednn_enabled

    print_result({
        "mode": args.worker, "onednn": onednn_enabled(), "step_s": statistics.median(times),
        "cpu_s": statistics.median(cpu_times), "times": times, "cpu_times": cpu_times,
        "tensor_peak_mib": peak / MIB, "process_peak_mib": hwm, "process_growth_mib": hwm - rss_before,
    })


def _run(mode, args, onednn):
    env = {**os.environ, "TF_CPU_ALLOCATOR_USE_BFC": "true"}
    if onednn != "default":
        env["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn == "on" else "0"
    command = [sys.executable, os.path.abspath(__file__), "--worker", mode, "--model", args.model,
               "--size", str(args.size), "--batch", str(args.batch), "--classes", str(args.classes),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
    return worker_result(command, env, mode)


def _summary(rounds):
    keys = ("step_s", "cpu_s", "tensor_peak_mib", "process_peak_mib", "process_growth_mib")
    medians = {mode: {k: statistics.median(r[mode][k] for r in rounds) for k in keys} for mode in MODES}
    ratios = {k: statistics.median(r["efficient"][k] / r["plain"][k] for r in rounds) for k in keys}
    return medians, ratios


def _table(args, medians, ratios, onednn):
    rows = [
        ("step wall time (s)", "step_s", "{:.2f}"),
        ("step CPU time, all threads (s)", "cpu_s", "{:.2f}"),
        ("tensor peak (MiB)", "tensor_peak_mib", "{:.0f}"),
        ("process peak RSS (MiB)", "process_peak_mib", "{:.0f}"),
        ("RSS growth in training (MiB)", "process_growth_mib", "{:.0f}"),
    ]
    threads = f"{args.threads} thread(s)" if args.threads else "default threads"
    lines = [f"{args.model}, {args.size}x{args.size}, batch {args.batch}, {args.classes} classes, {threads}, {onednn}, "
             f"{args.rounds} rounds x {args.steps} steps (medians)", "",
             "| | plain | memory_efficient | ratio |", "| --- | ---: | ---: | ---: |"]
    for label, key, fmt in rows:
        lines.append(f"| {label} | {fmt.format(medians['plain'][key])} | "
                     f"{fmt.format(medians['efficient'][key])} | {ratios[key]:.2f}x |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="densenet121")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow intra- and inter-op threads (0: its default, all cores); 1 gives steadier "
                             "timings on a shared machine")
    parser.add_argument("--onednn", nargs="+", choices=("default", "on", "off"), default=["default"],
                        help="TF_ENABLE_ONEDNN_OPTS of the workers, each setting measured on its own (default: "
                             "TensorFlow's choice for this CPU)")
    parser.add_argument("--json", help="also write the raw runs and the summary to this file")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    print(machine())
    report = {}
    for onednn in args.onednn:
        rounds = []
        for index in range(args.rounds):
            order = MODES if index % 2 == 0 else MODES[::-1]
            rounds.append({mode: _run(mode, args, onednn) for mode in order})
            print(f"oneDNN {onednn}, round {index + 1}: " + ", ".join(
                f"{m} {rounds[-1][m]['step_s']:.2f} s, {rounds[-1][m]['tensor_peak_mib']:.0f} MiB" for m in MODES),
                flush=True)
        medians, ratios = _summary(rounds)
        label = f"oneDNN {'on' if rounds[0]['plain']['onednn'] else 'off'} ({onednn})"
        print(_table(args, medians, ratios, label))
        report[onednn] = {"rounds": rounds, "medians": medians, "ratios": ratios}
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"args": vars(args), "settings": report}, out, indent=1)
    return None


if __name__ == "__main__":
    main()
