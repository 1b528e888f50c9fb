"""Peak memory and time of one export per model, each in a fresh process, with and without the ONNX collector.

    python bench/bench_export_memory.py                                  # resnet50 resnext50_32x4d, onnx
    python bench/bench_export_memory.py --models resnext101_32x8d --formats onnx tflite --max-gb 20
    python bench/bench_export_memory.py --arms collect                   # only the library as shipped

Each row runs in its own child process, so one export's garbage never counts against the next. The child
builds the model (``--size`` input, 10 classes), records its resident memory, runs ``keras_cnn.export``'s
function for the format and reports the time and the process's peak resident memory (``ru_maxrss``). The
parent polls the child's resident memory every 0.1 s and stops it above ``--max-gb`` (reported as ``>``), so
an arm that would exhaust the machine ends as a measurement instead of an OOM kill of something else.

Arms for ``onnx``: ``collect`` is ``export.to_onnx`` as shipped (``keras_cnn/_onnx_convert.py`` collects
tf2onnx's discarded graph copies before each optimizer pass); ``no-collect`` replaces that one context manager
with a no-op, which is tf2onnx's own behaviour. Other formats run once (arm ``-``).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import _common  # noqa: F401  (sets up the import path and TF logging first)
from _common import machine

CHILD = r"""
import contextlib, json, resource, sys, time
import numpy as np
import keras_cnn
from keras_cnn import _onnx_convert, export
name, fmt, arm, size, out = sys.argv[1:6]
if arm == "no-collect":
    _onnx_convert._collect_between_optimizers = contextlib.nullcontext
model = keras_cnn.build(name, input_shape=(int(size), int(size), 3), classes=10)
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
before, start = rss(), time.perf_counter()
if fmt == "onnx":
    export.to_onnx(model, out, overwrite=True)
elif fmt == "tflite":
    export.to_tflite(model, out, overwrite=True)
else:
    export.to_saved_model(model, out, overwrite=True)
print(json.dumps({"params": model.count_params(), "seconds": time.perf_counter() - start, "before": before,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "resnext50_32x4d"])
    parser.add_argument("--formats", nargs="+", default=["onnx"], choices=["onnx", "tflite", "savedmodel"])
    parser.add_argument("--arms", nargs="+", default=["collect", "no-collect"], choices=["collect", "no-collect"])
    parser.add_argument("--size", type=int, default=64, help="input height and width")
    parser.add_argument("--max-gb", type=float, default=16.0, help="stop a child above this resident memory")
    return parser.parse_args(argv)


def run_child(name, fmt, arm, size, max_bytes, folder):
    out = os.path.join(folder, f"{name}-{fmt}-{arm}" + {"onnx": ".onnx", "tflite": ".tflite"}.get(fmt, ""))
    child = subprocess.Popen([sys.executable, "-c", CHILD, name, fmt, arm, str(size), out],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen = 0
    while child.poll() is None:
        seen = max(seen, _resident(child.pid))
        if seen > max_bytes:
            child.kill()
            child.wait()
            return {"peak": seen, "stopped": True}
        time.sleep(0.1)
    lines = child.stdout.read().strip().splitlines()
    if child.returncode != 0 or not lines:
        return {"error": f"exit {child.returncode}"}
    return json.loads(lines[-1])


def _resident(pid):
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (FileNotFoundError, ProcessLookupError):
        return 0


def row(name, fmt, arm, result):
    gb = lambda key: f"{result[key] / 2**30:.2f}"  # noqa: E731
    if "error" in result:
        return f"| {name} | {fmt} | {arm} | {result['error']} | | | |"
    if result.get("stopped"):
        return f"| {name} | {fmt} | {arm} | | | > {gb('peak')} (stopped) | |"
    weights = result["params"] * 4
    growth = (result["peak"] - result["before"]) / weights
    return (f"| {name} | {fmt} | {arm} | {weights / 2**20:.0f} MiB | {gb('before')} | {gb('peak')} | "
            f"{growth:.1f}x | {result['seconds']:.1f} |")


def main(argv=None):
    args = parse_args(argv)
    print(machine())
    print(f"input {args.size}x{args.size}x3, 10 classes; peak = process maximum resident memory (GiB); "
          f"growth = (peak - before export) / float32 weights")
    print("| model | format | arm | weights | before (GiB) | peak (GiB) | growth | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            for fmt in args.formats:
                for arm in (args.arms if fmt == "onnx" else ["-"]):
                    result = run_child(name, fmt, arm, args.size, args.max_gb * 2**30, folder)
                    print(row(name, fmt, arm, result), flush=True)


if __name__ == "__main__":
    main()
