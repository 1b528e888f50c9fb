"""Inference throughput of keras_cnn models against keras.applications for the same architecture (issue #10).

    python bench/bench_peers.py                                  # all seven pairs, batch 8, 10 rounds, 1 thread
    python bench/bench_peers.py --models resnet50 xception --batch 16 --threads 2 --path predict_on_batch
    python bench/bench_peers.py --keras-bn                       # also keras_cnn with Keras's own BN (before)

Both models of a pair are built with random weights (keras.applications ``weights=None``), 1000 classes and
softmax, at 224x224 (299x299 for inception_v3 and xception), and run through the same path: a
``tf.function(jit_compile=False)`` of ``model(x, training=False)`` (default) or ``model.predict_on_batch``. The
arms of a pair run interleaved on one fixed random batch (bench/_common.py); reported are the median images/s of
each arm and the median over rounds of the per-round ratio keras_cnn / keras.applications in images/s (above 1:
keras_cnn is faster), from wall time and from process CPU time. TensorFlow runs ``--threads`` intra-op threads
(default 1) and one inter-op thread: on a machine shared with other processes a single compute thread is the
steadier measurement, and its CPU time counts the work done rather than the waiting for a core (its IQR is a few
per cent where wall time's can reach 50%); with 2 threads both figures include preemption at oneDNN's barriers.
The IQR columns are the larger relative interquartile range of the two arms' times: a ratio within about that
of 1.00 is noise.

keras.applications EfficientNetB0 puts ``Rescaling(1/255)`` and ``Normalization`` inside the model and has no
flag to leave them out (keras 3: ``include_preprocessing`` exists only for EfficientNetV2 and MobileNetV3), so it
is measured twice: as shipped and cut below them (``keras.Model(stem_conv_pad.input, output)``), the models-only
comparison. The parameter and multiply-accumulate columns show what each side computes: the ResNet-50 of
keras_cnn strides its 3x3 convolutions (torchvision's v1.5, 4.09 GMACs) where keras.applications strides the
first 1x1 (the original Caffe model, 3.86 GMACs), so they are the same depth but not the same arithmetic; the
arm ``keras_cnn stride_in_1x1=True`` is keras_cnn's ResNet-50 with keras.applications' arithmetic (the ablation
option ``keras_cnn.build("resnet50", stride_in_1x1=True)``).
``--keras-bn`` adds keras_cnn's model rebuilt with ``keras.layers.BatchNormalization`` in place of
``keras_cnn.layers.normalization.BatchNormalization`` (fused inference), the state before that layer existed.
"""

import argparse

import _common  # noqa: F401  (sets up the import path and TF logging first)
from _common import interleave, macs, machine, median, paired_ratio, spread

# keras_cnn name: (keras.applications constructor, input size)
PEERS = {
    "resnet50": ("ResNet50", 224),
    "densenet121": ("DenseNet121", 224),
    "mobilenet_v2": ("MobileNetV2", 224),
    "efficientnet_b0": ("EfficientNetB0", 224),
    "inception_v3": ("InceptionV3", 299),
    "xception": ("Xception", 299),
    "vgg16": ("VGG16", 224),
}


def _with_keras_batch_norm(model):
    """A copy of ``model`` whose batch normalisation layers are Keras's own (same weights)."""
    import keras

    from keras_cnn.layers.normalization import BatchNormalization

    def clone(layer):
        kind = keras.layers.BatchNormalization if isinstance(layer, BatchNormalization) else type(layer)
        return kind.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def _models(name, keras_bn):
    """``{label: model}`` for one pair, plus the fair-comparison variants the module docstring describes."""
    import keras

    import keras_cnn

    constructor, size = PEERS[name]
    shape = (size, size, 3)
    theirs = getattr(keras.applications, constructor)(weights=None, input_shape=shape)
    models = {"keras_cnn": keras_cnn.build(name, input_shape=shape), "keras.applications": theirs}
    if keras_bn:
        models["keras_cnn with Keras BN (before)"] = _with_keras_batch_norm(models["keras_cnn"])
    if name == "resnet50":
        models["keras_cnn stride_in_1x1=True"] = keras_cnn.build(name, input_shape=shape, stride_in_1x1=True)
    if name == "efficientnet_b0":
        models["keras.applications w/o preprocessing"] = keras.Model(theirs.get_layer("stem_conv_pad").input,
                                                                     theirs.output)
    return models


def _runner(model, images, path):
    """A zero-argument callable that runs the model on the batch and waits for the result."""
    import tensorflow as tf

    if path == "predict_on_batch":
        return lambda: model.predict_on_batch(images)
    function = tf.function(lambda x: model(x, training=False), jit_compile=False)
    batch = tf.constant(images)
    return lambda: function(batch).numpy()


def _compare(name, args):
    import numpy as np

    models = _models(name, args.keras_bn)
    size = PEERS[name][1]
    images = np.random.default_rng(0).uniform(0, 255, (args.batch, size, size, 3)).astype("float32")
    wall, cpu = interleave({label: _runner(m, images, args.path) for label, m in models.items()}, args.rounds,
                           warmup=args.warmup)
    rows = []
    for label, model in models.items():
        # their time / our time = our images/s over theirs
        ratios = [paired_ratio(times[label], times["keras_cnn"]) for times in (wall, cpu)]
        noise = [max(spread(times[label]), spread(times["keras_cnn"])) for times in (wall, cpu)]
        rows.append((name, label, model.count_params() / 1e6, macs(model) / 1e9,
                     args.batch / median(wall[label]), ratios, noise))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10, help="timed calls per arm")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per arm (tracing, oneDNN primitives)")
    parser.add_argument("--path", default="function", choices=["function", "predict_on_batch"])
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow intra-op threads")
    parser.add_argument("--keras-bn", action="store_true", help="add keras_cnn with Keras's BatchNormalization")
    args = parser.parse_args()

    import tensorflow as tf

    # before any op runs: afterwards TensorFlow refuses to change its thread pools
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    print(machine())
    print(f"batch {args.batch}, path {args.path}, {args.threads} thread(s), {args.rounds} interleaved rounds, "
          "medians; ratio = keras_cnn images/s over this arm's (wall | CPU time)")
    print(f"{'model':16s} {'implementation':38s} {'params M':>8s} {'GMACs':>6s} {'img/s':>6s} "
          f"{'ratio wall':>10s} {'IQR':>4s} {'ratio CPU':>9s} {'IQR':>4s}")
    for name in args.models:
        for model, label, params, gmacs, rate, ratios, noise in _compare(name, args):
            shown = ["" if label == "keras_cnn" else f"{r:.2f}x" for r in ratios]
            print(f"{model:16s} {label:38s} {params:8.2f} {gmacs:6.2f} {rate:6.1f} {shown[0]:>10s} "
                  f"{noise[0]:4.0%} {shown[1]:>9s} {noise[1]:4.0%}", flush=True)
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
