"""Peak training memory of keras_cnn against torchvision for the same architecture (issue #20, item 3).

    python bench/bench_train_memory.py                    # four models, batch 32, 224x224, 2 rounds
    python bench/bench_train_memory.py --models densenet121 --batch 16 --rounds 3 --json memory.json

Every sample is a fresh worker process (one arm, one model): it imports its framework, reads its resident set
(``VmRSS``: the framework's baseline), builds the model (random weights, 1000 classes, logits head), then runs
``--warmup`` + ``--steps`` optimizer steps (SGD with momentum, cross-entropy from logits) on one random batch,
and reports its peak resident set (``VmHWM``) above that baseline: weights, gradients, optimizer slots, the
activations kept for the backward pass, workspaces and allocator pools, i.e. what the machine has to hold for
training beyond the framework itself. Arms: ``keras_cnn`` (Keras's compiled train function, what ``fit`` runs),
``torchvision`` (the usual ``backward(); step(); zero_grad()`` loop) and, for DenseNet, ``keras_cnn
memory_efficient`` (``memory_efficient=True``: each dense layer's concatenation and bottleneck recomputed in the
backward pass). The arms alternate in a rotating order per round; figures are medians over rounds.

torch is an optional extra; without it the torchvision arm is left out.
"""

import argparse
import json
import os
import statistics
import sys

import _common  # noqa: F401  (sets up the import path and TF logging first)
from _common import machine, print_result, worker_result
from bench_densenet_memory import _status_mib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("resnet50", "mobilenet_v3_large", "densenet121", "efficientnet_b0")
ARMS = ("keras_cnn", "torchvision", "keras_cnn memory_efficient")


def _keras_worker(args):
    sys.path.insert(0, ROOT)
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_cnn

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    baseline = _status_mib("VmRSS:")
    options = {"memory_efficient": True} if args.arm.endswith("memory_efficient") else {}
    model = keras_cnn.build(args.model, input_shape=(args.size, args.size, 3), classifier_activation=None,
                            **options)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (args.batch, args.size, args.size, 3)).astype("float32")
    labels = rng.integers(0, 1000, args.batch)
    for _ in range(args.warmup + args.steps):
        model.train_on_batch(images, labels)
    return baseline


def _torch_worker(args):
    import torch
    import torchvision

    torch.set_num_threads(args.threads)
    baseline = _status_mib("VmRSS:")
    model = getattr(torchvision.models, args.model)(num_classes=1000)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch, 3, args.size, args.size, generator=generator)
    labels = torch.randint(0, 1000, (args.batch,), generator=generator)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(args.warmup + args.steps):
        loss_fn(model(images), labels).backward()
        optimizer.step()
        optimizer.zero_grad()
    return baseline


def worker(args):
    baseline = (_torch_worker if args.arm == "torchvision" else _keras_worker)(args)
    peak = _status_mib("VmHWM:")
    print_result({"baseline_mib": baseline, "peak_mib": peak, "training_mib": peak - baseline})


def _arms(model, have_torch):
    arms = ["keras_cnn"] + (["torchvision"] if have_torch else [])
    return arms + (["keras_cnn memory_efficient"] if model.startswith("densenet") else [])


def _have_torch():
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError:
        return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", help="also write the samples here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--arm", choices=ARMS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    have_torch = _have_torch()
    samples = {}
    for model in args.models:
        arms = _arms(model, have_torch)
        for index in range(args.rounds):
            shift = index % len(arms)
            for arm in arms[shift:] + arms[:shift]:
                command = [sys.executable, os.path.abspath(__file__), "--worker", "--model", model, "--arm", arm,
                           *(f"--{k}={getattr(args, k)}" for k in ("batch", "size", "threads", "warmup", "steps"))]
                result = worker_result(command, dict(os.environ), f"{model} {arm}")
                samples.setdefault(f"{model}|{arm}", []).append(result)
                print(f"{model} {arm}: {result['training_mib']:.0f} MiB above a {result['baseline_mib']:.0f} MiB "
                      f"baseline", flush=True)
    print(machine())
    print(f"batch {args.batch}, {args.size}x{args.size}, {args.threads} thread(s), {args.rounds} rounds; MiB of "
          f"peak RSS above the framework's baseline (median)")
    print("| model | " + " | ".join(ARMS) + " |\n| --- |" + " ---: |" * len(ARMS))
    for model in args.models:
        cells = []
        for arm in ARMS:
            values = [s["training_mib"] for s in samples.get(f"{model}|{arm}", [])]
            cells.append(f"{statistics.median(values):,.0f}" if values else "-")
        print(f"| {model} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"args": vars(args), "machine": machine(), "samples": samples}, out, indent=1)
    return None


if __name__ == "__main__":
    main()
