"""The fastest CPU serving path for ResNet-50 fp32, as images/s and as a share of this CPU's measured fp32 peak.

    python bench/bench_serving.py                                # batches 1 8 32, 2 threads, 8 rounds
    python bench/bench_serving.py --batches 32 --paths function onnx --threads 1
    TF_ENABLE_ONEDNN_OPTS=0 python bench/bench_serving.py        # TensorFlow without oneDNN (Eigen kernels)

Paths, all on the same ``keras_cnn.build("resnet50")`` (random weights): ``predict`` (``model.predict`` of one
batch), ``function`` (``tf.function`` of ``model(x, training=False)``), ``xla`` (the same with
``jit_compile=True``), ``frozen`` (that function with its variables turned into constants, so grappler can fold
each batch normalisation into the convolution before it, as the converters below do), ``savedmodel``
(``keras_cnn.export.to_saved_model``, reloaded with ``tf.saved_model.load``, its ``serving_default``
signature), ``tflite`` (``export.to_tflite`` float32, LiteRT with its default XNNPACK delegate and
``num_threads``), ``onnx`` (``export.to_onnx``, onnxruntime CPUExecutionProvider, all graph optimisations,
``intra_op_num_threads``). keras.applications ResNet50 runs through the same paths as the anchor.

Peak: a 4096x4096 fp32 matmul (2 * 4096^3 FLOPs) in a ``tf.function`` and in NumPy, timed as two more arms of
the same interleaved rounds. Each path's share of the peak is given three ways (``_figures``): paired wall time
(median over rounds of its FLOP rate over the better matmul rate of the same round), best call (fastest call
over fastest matmul: closest to an idle machine) and paired CPU time (with ``--threads 1`` this counts only the
time the thread ran, so it holds when other processes take turns on the cores; with 2 threads it also counts
spin-waiting). FLOPs per image are
2x the multiply-accumulates of the model's convolutions and dense layer, counted from its layers
(bench/_common.py): 4.09 GMACs = 8.18 GFLOPs for keras_cnn's ResNet-50 (torchvision's v1.5, stride on the 3x3)
and 3.86 GMACs for keras.applications' (stride on the first 1x1). Threads: TensorFlow intra-op =
``--threads`` (inter-op 1), LiteRT ``num_threads``, onnxruntime intra-op.
"""

import argparse
import os
import tempfile

import _common  # noqa: F401  (sets up the import path and TF logging first)
from _common import cpu_name, interleave, macs, machine, median

PATHS = ("predict", "function", "xla", "frozen", "savedmodel", "tflite", "onnx")
PEAK_SIZE = 4096
PEAK_FLOPS = 2 * PEAK_SIZE ** 3
PEAK_ARMS = ("peak: tf.matmul 4096", "peak: numpy 4096")


def _peak_arms():
    """``{label: (callable, flops)}`` for the matmul peak in TensorFlow and NumPy."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((PEAK_SIZE, PEAK_SIZE), dtype="float32") for _ in range(2))
    ta, tb = tf.constant(a), tf.constant(b)
    # reduce to a scalar so fetching the result costs nothing next to the 137 GFLOPs
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    tf_arm, numpy_arm = PEAK_ARMS
    return {tf_arm: (lambda: matmul(ta, tb).numpy(), PEAK_FLOPS),
            numpy_arm: (lambda: float((a @ b)[0, 0]), PEAK_FLOPS)}


def _frozen(model, batch):
    """The inference function with variables inlined as constants (what TFLite and ONNX converters see)."""
    import tensorflow as tf

    from keras_cnn import _compat

    function = tf.function(lambda x: model(x, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec((batch, *model.input_shape[1:]), tf.float32))
    return _compat.frozen(concrete)


def _tflite(path, batch, threads):
    from keras_cnn import _tflite

    interpreter, _ = _tflite.interpreter(path, num_threads=threads)  # default resolver: XNNPACK on
    return lambda images: _tflite.predict(interpreter, images, batch_size=batch)


def _onnx(path, threads):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda images: session.run(["probabilities"], {"image": images})[0]


def _export(model, folder, paths):
    """Write the artefacts the chosen paths need with keras_cnn.export (each verified against Keras)."""
    from keras_cnn import export

    files = {}
    if "savedmodel" in paths:
        files["savedmodel"] = export.to_saved_model(model, os.path.join(folder, "savedmodel")).path
    if "tflite" in paths:
        files["tflite"] = export.to_tflite(model, os.path.join(folder, "model.tflite")).path
    if "onnx" in paths:
        files["onnx"] = export.to_onnx(model, os.path.join(folder, "model.onnx")).path
    return files


def _runners(model, files, paths, batch, threads):
    """``{path: callable(images)}``: each returns the probabilities as a NumPy array (so the work is done)."""
    import tensorflow as tf

    runners = {}
    if "predict" in paths:
        runners["predict"] = lambda x: model.predict(x, batch_size=batch, verbose=0)
    for path, jit in (("function", False), ("xla", True)):
        if path in paths:
            function = tf.function(lambda x: model(x, training=False), jit_compile=jit)
            runners[path] = lambda x, f=function: f(tf.constant(x)).numpy()
    if "frozen" in paths:
        frozen = _frozen(model, batch)
        runners["frozen"] = lambda x: frozen(tf.constant(x))[0].numpy()
    if "savedmodel" in paths:
        signature = tf.saved_model.load(files["savedmodel"]).signatures["serving_default"]
        runners["savedmodel"] = lambda x: signature(image=tf.constant(x))["probabilities"].numpy()
    if "tflite" in paths:
        runners["tflite"] = _tflite(files["tflite"], batch, threads)
    if "onnx" in paths:
        runners["onnx"] = _onnx(files["onnx"], threads)
    return runners


def _measure(models, files, args, batch):
    """One interleaved run of every (model, path) arm and the two peak arms at one batch size."""
    import numpy as np

    images = np.random.default_rng(0).uniform(0, 1, (batch, 224, 224, 3)).astype("float32")
    arms, flops = {}, {}
    for name, model in models.items():
        for path, run in _runners(model, files[name], args.paths, batch, args.threads).items():
            arms[f"{name} {path}"] = lambda run=run: run(images)
            flops[f"{name} {path}"] = 2 * macs(model) * batch
    for label, (fn, count) in _peak_arms().items():
        arms[label], flops[label] = fn, count
    wall, cpu = interleave(arms, args.rounds, warmup=args.warmup)
    return {label: _figures(flops[label], wall[label], cpu[label], wall, cpu, batch * (label.split()[0] != "peak:"))
            for label in arms}


def _figures(flops, wall, cpu, all_wall, all_cpu, batch):
    """img/s, GFLOP/s and three shares of the peak (the better of the two matmuls in each case):

    paired: median over rounds of the arm's FLOP rate over the peak rate of the same round (wall time);
    best: the fastest call of the arm over the fastest matmul call (least disturbed by other processes);
    CPU: the same paired ratio from process CPU time, the steady figure with ``--threads 1``.
    """
    def peak(times):
        return [max(PEAK_FLOPS / a, PEAK_FLOPS / b) for a, b in zip(*(times[k] for k in PEAK_ARMS))]

    paired = median(flops / t / p for t, p in zip(wall, peak(all_wall)))
    best = flops / min(wall) / max(PEAK_FLOPS / min(all_wall[k]) for k in PEAK_ARMS)
    by_cpu = median(flops / t / p for t, p in zip(cpu, peak(all_cpu)))
    return batch / median(wall), flops / median(wall) / 1e9, paired, best, by_cpu


def _report(results):
    print(f"{'arm':32s} {'batch':>5s} {'img/s':>6s} {'GFLOP/s':>7s} {'% peak paired':>13s} {'best':>6s} "
          f"{'CPU time':>8s}")
    for batch, rows in results.items():
        for label, (images, gflops, paired, best, by_cpu) in rows.items():
            print(f"{label:32s} {batch:5d} {images:6.1f} {gflops:7.1f} {paired:13.1%} {best:6.1%} {by_cpu:8.1%}")
    for column, title in ((2, "paired wall"), (3, "best call"), (4, "CPU time")):
        share, label, batch = max((row[column], label, batch) for batch, rows in results.items()
                                  for label, row in rows.items() if not label.startswith("peak"))
        print(f"best by {title}: {label} at batch {batch}: {share:.1%} of the measured fp32 peak")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-anchor", action="store_true", help="skip keras.applications ResNet50")
    args = parser.parse_args()

    import tensorflow as tf

    # before any op runs: afterwards TensorFlow refuses to change its thread pools
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    import keras_cnn

    models = {"keras_cnn": keras_cnn.build("resnet50")}
    if not args.no_anchor:
        models["keras.applications"] = keras.applications.ResNet50(weights=None)
    with tempfile.TemporaryDirectory() as folder:
        files = {name: _export(model, os.path.join(folder, name), args.paths) for name, model in models.items()}
        results = {batch: _measure(models, files, args, batch) for batch in args.batches}
    print(machine())
    print(f"ResNet-50 fp32 224x224, {args.threads} threads, {args.rounds} interleaved rounds, medians; "
          f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset (on)')}; {cpu_name()}")
    _report(results)


if __name__ == "__main__":
    main()
