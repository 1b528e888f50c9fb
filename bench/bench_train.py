"""Training throughput of keras_cnn against keras.applications and torchvision for the same architecture (#20).

    python bench/bench_train.py                                 # five models, batch 16, 1 and 2 threads
    python bench/bench_train.py --models resnet50 --threads 1 --rounds 8 --json train.json
    python bench/bench_train.py --dry-run                       # CI-size: a tiny model, 2 timed steps
    python bench/bench_train.py --mixed-precision --jit --batch 256 --models resnet50 efficientnet_b0  # GPU

A sample is images/s of full optimizer steps (forward, backward, SGD with momentum update) on one fixed random
batch after warm-up steps, in the path a user's ``model.fit`` takes: Keras's compiled train function
(``model.train_on_batch``) for keras_cnn and keras.applications, and the usual PyTorch loop
(``loss.backward(); optimizer.step(); optimizer.zero_grad()``) for torchvision. Every model is built with random
weights, 1000 classes and a logits head (cross-entropy from logits on both sides), at 224x224 (299x299 for
Inception v3). The arms of one model run interleaved in one worker process per thread count
(bench/_common.py): TensorFlow fixes its thread pools when it starts, and torch is imported first (the other
order crashes). Reported: median images/s per arm, and the median over rounds of the per-round ratio
keras_cnn / peer (above 1: keras_cnn trains faster) with the interquartile spread of those ratios.

torch is an optional extra (``pip install torch torchvision``); without it the torch arms are left out.
"""

import argparse
import json
import os
import sys

import _common  # noqa: F401  (sets up the import path and TF logging first)
from _common import cpu_name, median, print_result, spread, worker_result

# keras_cnn name: (keras.applications constructor, torchvision constructor, input size)
MODELS = {
    "resnet50": ("ResNet50", "resnet50", 224),
    "mobilenet_v3_large": ("MobileNetV3Large", "mobilenet_v3_large", 224),
    "densenet121": ("DenseNet121", "densenet121", 224),
    "efficientnet_b0": ("EfficientNetB0", "efficientnet_b0", 224),
    "inception_v3": ("InceptionV3", "inception_v3", 299),
}
# the smallest model all three libraries have: --dry-run's, at 32x32
DRY_RUN_MODEL = "mobilenet_v3_small"
PEERS = {**MODELS, DRY_RUN_MODEL: ("MobileNetV3Small", "mobilenet_v3_small", 224)}
# "keras_cnn keras-bn": keras_cnn's model with keras.layers.BatchNormalization (the training path before the fused
# one of keras_cnn.layers.normalization), an ablation arm asked for with --arms
ARMS = ("keras_cnn", "keras.applications", "torchvision", "keras_cnn keras-bn")
DEFAULT_ARMS = ARMS[:3]


def _torch():
    try:
        import torch  # noqa: F401  (before TensorFlow)
        import torchvision  # noqa: F401
    except ImportError:
        return None
    return torch


def keras_step(model, batch, labels, jit):
    """One optimizer step of a compiled Keras model, as ``fit`` runs it."""
    import keras

    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
    return lambda: model.train_on_batch(batch, labels)


def keras_cnn_model(name, size, classes):
    import keras_cnn

    return keras_cnn.build(name, input_shape=(size, size, 3), classes=classes, classifier_activation=None)


def applications_model(name, size, classes):
    """keras.applications' model, logits head; EfficientNet/MobileNetV3 without their in-model rescaling."""
    import keras

    constructor = getattr(keras.applications, PEERS[name][0])
    extra = {"include_preprocessing": False} if "MobileNetV3" in constructor.__name__ else {}
    model = constructor(weights=None, input_shape=(size, size, 3), classes=classes, classifier_activation=None,
                        **extra)
    if "EfficientNet" in constructor.__name__:  # Rescaling + Normalization are inside; cut below them
        model = keras.Model(model.get_layer("stem_conv_pad").input, model.output)
    return model


def torch_step(torch, name, size, batch_size, classes, threads):
    import torchvision

    torch.set_num_threads(threads)
    kwargs = {"aux_logits": False, "init_weights": False} if name == "inception_v3" else {}
    model = getattr(torchvision.models, PEERS[name][1])(num_classes=classes, **kwargs)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch_size, 3, size, size)
    y = torch.randint(0, classes, (batch_size,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step


def worker(args):
    """One model at one thread count: every arm interleaved; prints the per-round seconds per step."""
    torch = _torch() if "torchvision" in args.arms else None
    (threads,) = args.threads  # one count per worker
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1 if threads == 1 else 2)
    import keras

    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16" if tf.config.list_physical_devices("GPU")
                                                else "mixed_bfloat16")
    from _common import interleave, machine

    name, size = args.model, args.size or PEERS[args.model][2]
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(args.batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, args.classes, size=(args.batch,))
    arms = {}
    if "keras_cnn" in args.arms:
        arms["keras_cnn"] = keras_step(keras_cnn_model(name, size, args.classes), batch, labels, args.jit)
    if "keras_cnn keras-bn" in args.arms:
        from bench_peers import _with_keras_batch_norm

        model = _with_keras_batch_norm(keras_cnn_model(name, size, args.classes))
        arms["keras_cnn keras-bn"] = keras_step(model, batch, labels, args.jit)
    if "keras.applications" in args.arms:
        arms["keras.applications"] = keras_step(applications_model(name, size, args.classes), batch, labels,
                                                args.jit)
    if torch is not None:
        arms["torchvision"] = torch_step(torch, name, size, args.batch, args.classes, threads)
    wall, cpu = interleave(arms, args.rounds, warmup=args.warmup, calls=args.steps)
    print_result({"model": name, "size": size, "threads": threads, "batch": args.batch, "wall": wall,
                  "cpu": cpu, "machine": machine(), "torch": torch.__version__ if torch else None})


def _worker_command(args, model, threads):
    command = [sys.executable, os.path.abspath(__file__), "--worker", "--model", model, "--threads", str(threads),
               "--batch", str(args.batch), "--rounds", str(args.rounds), "--warmup", str(args.warmup),
               "--steps", str(args.steps), "--classes", str(args.classes), "--arms", *args.arms]
    command += ["--size", str(args.size)] if args.size else []
    command += ["--jit"] if args.jit else []
    command += ["--mixed-precision"] if args.mixed_precision else []
    return command


def summarise(result):
    """Rows of (arm, median images/s, ratio keras_cnn/arm, spread of the ratio) from one worker's samples."""
    batch, wall = result["batch"], result["wall"]
    ours = wall.get("keras_cnn")
    rows = []
    for arm, seconds in wall.items():
        ratios = [theirs / mine for mine, theirs in zip(ours, seconds)] if ours else []
        rows.append({"arm": arm, "images_per_s": batch / median(seconds),
                     "ratio": median(ratios) if ratios else None,
                     "ratio_spread": spread(ratios) if len(ratios) >= 4 else None})
    return rows


def report(results):
    lines = [f"{'model':<20}{'threads':>8}  {'arm':<20}{'img/s':>9}{'keras_cnn/arm':>15}{'IQR':>7}"]
    for result in results:
        for row in summarise(result):
            ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None and row["arm"] != "keras_cnn" else ""
            iqr = f"{row['ratio_spread']:.0%}" if ratio and row["ratio_spread"] is not None else ""
            lines.append(f"{result['model']:<20}{result['threads']:>8}  {row['arm']:<20}"
                         f"{row['images_per_s']:>9.1f}{ratio:>15}{iqr:>7}")
    return "\n".join(lines)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(PEERS),
                   help="keras_cnn model names (default: the five of issue #20)")
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="intra-op threads of each run")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, help="input height and width (default: each model's)")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=6, help="interleaved rounds (samples per arm)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per arm first")
    p.add_argument("--steps", type=int, default=1, help="optimizer steps per sample")
    p.add_argument("--arms", nargs="+", default=list(DEFAULT_ARMS), choices=ARMS)
    p.add_argument("--jit", action="store_true", help="compile the Keras steps with XLA (jit_compile=True)")
    p.add_argument("--mixed-precision", action="store_true",
                   help="Keras mixed_float16 on a GPU, mixed_bfloat16 on a CPU (the torch arm stays float32)")
    p.add_argument("--json", help="also write the samples and the table's figures here")
    p.add_argument("--dry-run", action="store_true",
                   help=f"CI-size check that every arm runs: {DRY_RUN_MODEL} at 32x32, batch 4, 10 classes, "
                        "1 round of 2 steps, 1 thread")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.dry_run:
        args.models, args.threads, args.batch, args.size, args.classes = [DRY_RUN_MODEL], [1], 4, 32, 10
        args.rounds, args.warmup, args.steps = 1, 1, 2
    return args


def main(argv=None):
    args = parse(argv)
    if args.worker:
        return worker(args)
    if "torchvision" in args.arms and _torch() is None:
        print("torch/torchvision not installed: the torchvision arm is left out", file=sys.stderr)
        args.arms = [arm for arm in args.arms if arm != "torchvision"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    results = [worker_result(_worker_command(args, model, threads), env, f"{model} at {threads} thread(s)")
               for model in args.models for threads in args.threads]
    print(f"{results[0]['machine']}; torch {results[0]['torch']}; batch {args.batch}; "
          f"{'XLA; ' if args.jit else ''}{'mixed precision; ' if args.mixed_precision else ''}CPU {cpu_name()}")
    print(report(results))
    if args.json:
        from keras_cnn import _files

        table = [{"model": r["model"], "threads": r["threads"], **row} for r in results for row in summarise(r)]
        _files.write_text(args.json, json.dumps({"settings": vars(args), "results": results, "table": table},
                                                indent=1))
    return results


if __name__ == "__main__":
    main()
