#!/usr/bin/env bash
# Training throughput on an NVIDIA GPU (issue #20): keras_cnn against keras.applications, ResNet-50 and
# EfficientNet-B0, mixed precision (mixed_float16) and XLA (jit_compile=True), batch 128 and 256, images/s of full
# optimizer steps (bench/bench_train.py). Writes one JSON of every sample and the table.
#
#   bash bench/gpu.sh                         # on a GPU machine; installs tensorflow[and-cuda] if it is missing
#   bash bench/gpu.sh --wheels DIR            # offline: install from a folder of wheels (pip --no-index)
#   bash bench/gpu.sh --dry-run               # CI-size on a CPU: a tiny model, 2 steps, same flags, same JSON
#   bash bench/gpu.sh --output results.json --python .venv/bin/python
#
# Budget: under 8 minutes with the install (pip ~2-3 min for TensorFlow and CUDA; each model's XLA compile ~30-60 s;
# 2 models x 2 batches x 2 arms x 6 rounds of 10 steps). The reference figure: NVIDIA's TensorFlow ResNet-50
# with AMP and XLA trains at about 2,375 images/s on one A100.
set -euo pipefail
cd "$(dirname "$0")/.."

dry_run=0
output="bench/gpu_results.json"
python="${PYTHON:-}"
wheels=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --output) output="$2"; shift ;;
        --python) python="$2"; shift ;;
        --wheels) wheels="$2"; shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu.sh: unknown argument '$1' (allowed: --dry-run, --output FILE, --python PY, --wheels DIR)" >&2
           exit 2 ;;
    esac
    shift
done

if [ -z "$python" ]; then
    if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi

if [ "$dry_run" = 1 ]; then
    # every code path of the real run on a CPU: both arms, XLA, mixed precision (bfloat16 on a CPU), the JSON
    exec "$python" bench/bench_train.py --dry-run --arms keras_cnn keras.applications --jit --mixed-precision \
        --json "$output"
fi

if ! "$python" -c "import tensorflow, keras_cnn" 2>/dev/null; then
    venv=/tmp/keras-cnn-gpu
    python3 -m venv "$venv"
    python="$venv/bin/python"
    source_args=()
    if [ -n "$wheels" ]; then source_args=(--no-index --find-links "$wheels"); fi
    start=$(date +%s)
    "$python" -m pip install --quiet "${source_args[@]}" "tensorflow[and-cuda]>=2.21,<2.22" "keras>=3.15,<3.16"
    "$python" -m pip install --quiet "${source_args[@]}" --no-deps -e .
    "$python" -m pip install --quiet "${source_args[@]}" "scikit-learn>=1.4"
    echo "installed in $(( $(date +%s) - start )) s"
fi

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
gpus=$("$python" -c "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))" 2>/dev/null)
if [ "${gpus:-0}" = 0 ]; then
    echo "gpu.sh: TensorFlow sees no GPU (use --dry-run on a CPU)" >&2
    exit 1
fi

parts=()
for batch in 128 256; do
    part="${output%.json}.batch${batch}.json"
    "$python" bench/bench_train.py --models resnet50 efficientnet_b0 --arms keras_cnn keras.applications \
        --threads "$(nproc)" --batch "$batch" --jit --mixed-precision --rounds 6 --warmup 3 --steps 10 --json "$part"
    parts+=("$part")
done
"$python" - "$output" "${parts[@]}" <<'EOF'
import json, sys
output, parts = sys.argv[1], sys.argv[2:]
runs = [json.load(open(p)) for p in parts]
merged = {"runs": runs, "table": [row | {"batch": run["settings"]["batch"]} for run in runs for row in run["table"]]}
with open(output + ".tmp", "w") as f:
    json.dump(merged, f, indent=1)
import os
os.replace(output + ".tmp", output)
for p in parts:
    os.remove(p)
print(f"wrote {output}")
EOF
