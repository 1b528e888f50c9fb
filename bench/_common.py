"""Helpers shared by the benchmark scripts: interleaved timing with medians, a MAC count, the machine.

On a shared machine an absolute time means little; a ratio of two arms timed in alternation does, because load
from other processes hits both alike. ``interleave`` runs every arm once per round in a rotating order and keeps
each sample, so a script can report medians and the median of per-round (paired) ratios.
"""

import datetime
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Run from a checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def interleave(arms, rounds, warmup=2, calls=1):
    """``(wall, cpu)``: two ``{label: [seconds per call, one per round]}`` for ``arms = {label: callable}``.

    Each arm first runs ``warmup`` untimed calls (tracing, allocation, autotuning). A sample is the mean of
    ``calls`` consecutive calls, so arms of a few milliseconds are not dominated by timer and scheduler jitter.
    The order rotates every round so no arm always follows the same neighbour (caches, CPU frequency).
    ``cpu`` is the process CPU time (all threads) per call: with one compute thread it counts the work done and
    not the time the thread waited for a core, so it is the steadier figure when other processes compete
    (with more threads it also counts their spin-waiting at barriers).
    """
    for fn in arms.values():
        for _ in range(warmup):
            fn()
    wall, cpu = {label: [] for label in arms}, {label: [] for label in arms}
    order = list(arms)
    for index in range(rounds):
        shift = index % len(order)
        for label in order[shift:] + order[:shift]:
            fn = arms[label]
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                fn()
            wall[label].append((time.perf_counter() - start) / calls)
            cpu[label].append((time.process_time() - start_cpu) / calls)
    return wall, cpu


def worker_result(command, env, label):
    """Run a benchmark worker process and return the JSON of its last ``RESULT <json>`` line (see
    :func:`print_result`); a worker that fails or prints none raises with its stderr."""
    import json
    import subprocess

    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{label} worker failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def print_result(result):
    """A worker's answer to :func:`worker_result`: one ``RESULT <json>`` line on stdout."""
    import json

    print("RESULT " + json.dumps(result), flush=True)


def median(values):
    return statistics.median(values)


def paired_ratio(numerator, denominator):
    """Median over rounds of ``numerator[i] / denominator[i]`` (samples of the same round)."""
    return statistics.median(n / d for n, d in zip(numerator, denominator))


def spread(values):
    """Interquartile range relative to the median: the noise band a ratio must clear to mean something."""
    if len(values) < 4:
        return float("nan")
    q1, _, q3 = statistics.quantiles(values, n=4)
    return (q3 - q1) / statistics.median(values)


def macs(model):
    """Multiply-accumulates of one image through the model's convolutions and dense layers (others ignored:
    BN, activations, pooling and additions are a few per cent at most). Needs static spatial shapes."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += macs(layer)
            continue
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
            continue
        out = layer.output.shape
        channels_in = layer.input.shape[-1]
        positions = 1 if len(out) == 2 else out[1] * out[2]
        if kind == "Dense":
            total += positions * channels_in * out[-1]
            continue
        window = layer.kernel_size[0] * layer.kernel_size[1]
        if kind == "DepthwiseConv2D":
            total += positions * out[-1] * window
        elif kind == "SeparableConv2D":
            total += positions * channels_in * layer.depth_multiplier * (window + out[-1])
        else:
            total += positions * out[-1] * window * channels_in // getattr(layer, "groups", 1)
    return total


def cpu_name():
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def onednn():
    """``"oneDNN on"``/``"oneDNN off"`` for this process, with the ``TF_ENABLE_ONEDNN_OPTS`` value that chose it
    (TensorFlow's default is on only on AVX-512-class CPUs)."""
    from keras_cnn._compat import onednn_enabled

    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    chosen = f"TF_ENABLE_ONEDNN_OPTS={setting}" if setting is not None else "TensorFlow's default for this CPU"
    return f"oneDNN {'on' if onednn_enabled() else 'off'} ({chosen})"


def machine():
    """One line: CPU, cores, AVX-512, the oneDNN setting, library versions and today's date, for the head of
    every report."""
    import keras
    import tensorflow as tf

    try:
        with open("/proc/cpuinfo") as file:
            avx512 = " avx512f " in file.read()
    except OSError:
        avx512 = False
    return (f"{cpu_name()}, {os.cpu_count()} cores{' (AVX-512)' if avx512 else ''}, {onednn()}, "
            f"tensorflow {tf.__version__}, "
            f"keras {keras.__version__}, python {platform.python_version()}, {datetime.date.today().isoformat()}")
