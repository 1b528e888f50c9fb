"""bench/bench_train.py and bench/gpu.sh (issue #20): the GPU script runs end to end on a CPU in CI size, and the
table's ratios are the per-round ratios the README reports."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import bench_train  # noqa: E402


def test_summary_ratios_are_medians_of_per_round_ratios():
    result = {"batch": 8, "wall": {"keras_cnn": [1.0, 2.0, 1.0, 1.0], "torchvision": [2.0, 2.0, 3.0, 1.0]}}
    rows = {row["arm"]: row for row in bench_train.summarise(result)}
    assert rows["keras_cnn"]["images_per_s"] == 8.0 and rows["keras_cnn"]["ratio"] == 1.0
    assert rows["torchvision"]["ratio"] == 1.5  # median of 2, 1, 3, 1 (their time / ours: above 1, ours faster)
    assert rows["torchvision"]["images_per_s"] == 4.0


def test_gpu_script_dry_run_writes_both_arms(tmp_path):
    output = tmp_path / "gpu.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(["bash", "bench/gpu.sh", "--dry-run", "--output", str(output), "--python", sys.executable],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    table = json.loads(output.read_text())["table"]
    assert [row["arm"] for row in table] == ["keras_cnn", "keras.applications"]
    assert all(row["images_per_s"] > 0 and row["model"] == bench_train.DRY_RUN_MODEL for row in table)
    settings = json.loads(output.read_text())["settings"]
    assert settings["jit"] and settings["mixed_precision"] and settings["steps"] == 2


def test_gpu_script_refuses_an_unknown_argument():
    done = subprocess.run(["bash", "bench/gpu.sh", "--batch", "64"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "unknown argument '--batch'" in done.stderr


def test_memory_benchmark_reports_training_memory_above_the_baseline(tmp_path):
    """bench/bench_train_memory.py end to end at CI size (keras_cnn arm; torch is not a test dependency)."""
    output = tmp_path / "memory.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "bench/bench_train_memory.py", "--models", "lenet5", "--size", "32",
                           "--batch", "4", "--rounds", "1", "--steps", "1", "--json", str(output)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    samples = json.loads(output.read_text())["samples"]
    (sample,) = samples["lenet5|keras_cnn"]
    # the model, its gradients, optimizer slots and the traced step cost something above the imports
    assert sample["peak_mib"] >= sample["baseline_mib"] and sample["training_mib"] > 0
    assert "| lenet5 | " in done.stdout
