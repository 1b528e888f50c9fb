"""TFLite full-integer int8 against float32 for mobile models through LiteRT: latency, file size, top-1 agreement.

    python bench/bench_tflite_int8.py                            # mobilenet_v2 shufflenet_v2_x1_0 squeezenet1_1
    python bench/bench_tflite_int8.py --models squeezenet1_1 --train-size 96 --rounds 30

Latency and file size: each model is built at the realistic 224x224x3 with 1000 classes (random weights: speed
and size do not depend on the values) and converted by ``keras_cnn.export.to_tflite`` to float32 and to int8
(built-in int8 operators only, int8 input and output; per-channel weight scales, the default, and per-tensor),
calibrated on 100 of the bundled digits resized to 224.
LiteRT runs both with its default delegate (XNNPACK, which takes float32 and int8 operators alike) at batch 1
with ``num_threads`` 2 and 1; the arms run interleaved (bench/_common.py), a sample being the mean of
``--calls`` invocations, and the latency ratio is the median over rounds of int8 / float32 at the same thread
count (goal <= 0.35x), from wall time, and from process CPU time as a check (steadier with 1 thread on a shared
machine; with 2 it includes the thread pool's spinning). The size ratio is int8 / float32 bytes (goal <= 0.27x).

Agreement: the same family, trained briefly on the bundled digits (keras_cnn.data, 1,078 training images) at
``--train-size`` px with 10 classes, Adam with cosine decay, then batch-norm statistics re-estimated on 256
training images (a short run leaves the moving averages far off); converted to int8 the same way, calibrated on
the training images. Reported: the float model's test accuracy (it must have learned, or agreement means
nothing), the int8 model's, and top-1 agreement of int8 LiteRT with float Keras on the 360 held-out digits.
"""

import argparse
import os
import tempfile

import _common  # noqa: F401  (sets up the import path and TF logging first)
from _common import interleave, machine, median, paired_ratio

MODELS = ("mobilenet_v2", "shufflenet_v2_x1_0", "squeezenet1_1")
# (peak Adam learning rate, epochs): SqueezeNet has no batch norm and its ReLUs die at 2e-3
RECIPE = {"squeezenet1_1": (5e-4, 15)}
DEFAULT_RECIPE = (2e-3, 10)
SIZE = 224


def _predict(path, images):
    """Top-1 classes of a TFLite file on images, one at a time (the files have batch 1 in mind)."""
    from keras_cnn import _tflite

    interpreter, _ = _tflite.interpreter(path, num_threads=2)  # default resolver: XNNPACK
    return _tflite.predict(interpreter, images).argmax(1)  # quantized as export verification does


def _latency_arm(path, threads, image):
    from keras_cnn import _tflite

    interpreter, _ = _tflite.interpreter(path, num_threads=threads)  # default resolver: XNNPACK
    given, _ = _tflite.io_details(interpreter)
    data = _tflite.quantize(image, given)  # once, outside the timed calls

    def run():
        interpreter.set_tensor(given["index"], data)
        interpreter.invoke()
    return run


def _latency(name, folder, args):
    """File sizes and interleaved batch-1 latencies of the 224x224, 1000-class float32 and int8 files."""
    import keras_cnn
    from keras_cnn import data, export

    model = keras_cnn.build(name, input_shape=(SIZE, SIZE, 3))
    calibration = data.digits(image_size=(SIZE, SIZE), channels=3)["train"][0][:100]
    files = {"float32": export.to_tflite(model, os.path.join(folder, f"{name}_f32.tflite")),
             "int8": export.to_tflite(model, os.path.join(folder, f"{name}_int8.tflite"), quantization="int8",
                                      representative_data=calibration, io_dtype="int8",
                                      num_calibration_samples=100),
             # one weight scale per tensor: no per-channel scales and zero points in the file (docs/export.md)
             "int8 per-tensor": export.to_tflite(model, os.path.join(folder, f"{name}_int8_pt.tflite"),
                                                 quantization="int8", representative_data=calibration,
                                                 io_dtype="int8", num_calibration_samples=100,
                                                 per_channel=False)}
    image = calibration[:1]
    arms = {(kind, threads): _latency_arm(result.path, threads, image)
            for threads in args.threads for kind, result in files.items()}
    wall, cpu = interleave(arms, args.rounds, warmup=5, calls=args.calls)
    latency = {(kind, threads): (median(wall["float32", threads]), median(wall[kind, threads]),
                                 paired_ratio(wall[kind, threads], wall["float32", threads]),
                                 paired_ratio(cpu[kind, threads], cpu["float32", threads]))
               for threads in args.threads for kind in ("int8", "int8 per-tensor")}
    return files, latency


def _train(name, size, splits):
    import keras

    import keras_cnn

    keras.utils.set_random_seed(0)
    model = keras_cnn.build(name, input_shape=(size, size, 3), classes=10)
    learning_rate, epochs = RECIPE.get(name, DEFAULT_RECIPE)
    steps = epochs * -(-len(splits["train"][0]) // 32)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps)),
                  loss="sparse_categorical_crossentropy")
    model.fit(*splits["train"], epochs=epochs, batch_size=32, verbose=0)
    # moving averages with momentum 0.99 lag far behind after a few hundred steps: set them from one pass
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(splits["train"][0][:256], training=True)
    return model


def _agreement(name, folder, args):
    import numpy as np

    from keras_cnn import data, export

    splits = data.digits(image_size=(args.train_size, args.train_size), channels=3)
    model = _train(name, args.train_size, splits)
    x_test, y_test = splits["test"]
    reference = model.predict(x_test, verbose=0).argmax(1)
    int8 = export.to_tflite(model, os.path.join(folder, f"{name}_digits_int8.tflite"), quantization="int8",
                            representative_data=splits["train"][0], io_dtype="int8")
    got = _predict(int8.path, x_test)
    return np.mean(reference == y_test), np.mean(got == y_test), np.mean(got == reference)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--threads", nargs="+", type=int, default=[2, 1])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=10, help="invocations averaged per sample")
    parser.add_argument("--train-size", type=int, default=64, help="digit image size for the agreement run")
    parser.add_argument("--no-agreement", action="store_true", help="latency and size only")
    args = parser.parse_args()

    import keras

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            files, latency = _latency(name, folder, args)
            agreement = None if args.no_agreement else _agreement(name, folder, args)
            rows.append((name, files, latency, agreement))
            keras.backend.clear_session()
    print(machine())
    print(f"LiteRT default delegate (XNNPACK), {SIZE}x{SIZE}x3 batch 1, 1000 classes, {args.rounds} interleaved "
          f"rounds of {args.calls} calls, medians; agreement on 360 held-out digits at {args.train_size} px")
    for name, files, latency, agreement in rows:
        f32_bytes = files["float32"].size_bytes
        print(f"{name}: float32 {f32_bytes / 1e6:.2f} MB; " + "; ".join(
            f"{kind} {files[kind].size_bytes / 1e6:.2f} MB, size ratio {files[kind].size_bytes / f32_bytes:.3f}x"
            for kind in ("int8", "int8 per-tensor")))
        for (kind, threads), (f32, int8, ratio, cpu_ratio) in latency.items():
            print(f"  {kind:15s} {threads} thread(s): float32 {f32 * 1e3:.2f} ms, int8 {int8 * 1e3:.2f} ms, "
                  f"latency ratio {ratio:.3f}x (CPU time ratio {cpu_ratio:.3f}x)")
        if agreement:
            print(f"  digits: float accuracy {agreement[0]:.3f}, int8 accuracy {agreement[1]:.3f}, "
                  f"int8/float top-1 agreement {agreement[2]:.3f}")


if __name__ == "__main__":
    main()
