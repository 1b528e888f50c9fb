"""int8 on a server CPU: keras_cnn's MobileNetV2 against keras.applications' through the same converter, and
onnxruntime's static int8 (QDQ) against onnxruntime float32 (issue #20, item 5).

    python bench/bench_int8.py                       # mobilenet_v2 at 224x224, 1 and 2 threads, 20 rounds
    python bench/bench_int8.py --threads 1 --rounds 30 --no-agreement

Latency: keras_cnn's ``mobilenet_v2`` and ``keras.applications.MobileNetV2`` (``weights=None``), both at
224x224x3 with 1000 classes and random weights (speed does not depend on the values), each converted by
``keras_cnn.export.to_tflite`` to float32 and to full int8 (int8 input and output, per-channel weights, 100 of the
bundled digits resized to 224 as calibration), and keras_cnn's model by ``keras_cnn.export.to_onnx`` to float32
and to int8 QDQ (onnxruntime's static quantization, the same calibration images). Batch 1; LiteRT with its
default delegate (XNNPACK) and onnxruntime's CPU provider, each with ``num_threads`` / ``intra_op_num_threads``
set to the thread count (onnxruntime's workers not spinning when idle: in interleaved arms one session's spinning
workers took the core the next arm needed); all arms of a thread count interleaved (bench/_common.py), a sample being the mean of
``--calls`` invocations. Ratios are medians over rounds of the per-round ratio.

Agreement: keras_cnn's MobileNetV2 trained briefly on the bundled digits at 32x32 (the recipe of
tests/test_export_int8_mobile.py), converted to int8 ONNX calibrated on the training images; top-1 agreement
of onnxruntime int8 with float Keras on the 360 held-out digits (goal >= 0.98).
"""

import argparse
import os
import sys
import tempfile

import _common  # noqa: F401  (sets up the import path and TF logging first)
from _common import interleave, machine, median, paired_ratio
from bench_tflite_int8 import _latency_arm as _tflite_arm

SIZE = 224


def _files(folder):
    """``{arm: ExportResult}`` of the four LiteRT and two ONNX files."""
    import keras

    import keras_cnn
    from keras_cnn import data, export

    calibration = data.digits(image_size=(SIZE, SIZE), channels=3)["train"][0][:100]
    models = {"keras_cnn": keras_cnn.build("mobilenet_v2", input_shape=(SIZE, SIZE, 3)),
              "keras.applications": keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), weights=None)}
    int8 = dict(representative_data=calibration, num_calibration_samples=100)
    files = {}
    for owner, model in models.items():
        stem = os.path.join(folder, owner)
        files[f"{owner} tflite f32"] = export.to_tflite(model, stem + "_f32.tflite")
        files[f"{owner} tflite int8"] = export.to_tflite(model, stem + "_int8.tflite", quantization="int8",
                                                         io_dtype="int8", **int8)
    stem = os.path.join(folder, "keras_cnn")
    files["keras_cnn onnx f32"] = export.to_onnx(models["keras_cnn"], stem + "_f32.onnx")
    files["keras_cnn onnx int8"] = export.to_onnx(models["keras_cnn"], stem + "_int8.onnx", quantization="int8",
                                                  **int8)
    return files, calibration[:1]


def _onnx_arm(path, threads, image):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    # idle workers of one session would otherwise spin on the core the next arm's session needs
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {"image": image}
    return lambda: session.run(None, feed)


def _latency(files, image, args):
    arms = {(label, threads): (_onnx_arm if "onnx" in label else _tflite_arm)(result.path, threads, image)
            for threads in args.threads for label, result in files.items()}
    return interleave(arms, args.rounds, warmup=5, calls=args.calls)


def _agreement(folder):
    import numpy as np

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from keras_cnn import export
    from tests.test_export_int8_mobile import trained

    model, splits = trained("mobilenet_v2")
    x_test, y_test = splits["test"]
    reference = model.predict(x_test, verbose=0).argmax(1)
    result = export.to_onnx(model, os.path.join(folder, "digits_int8.onnx"), quantization="int8",
                            representative_data=splits["train"][0], verify_data=x_test)
    import onnxruntime

    session = onnxruntime.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x_test})[0].argmax(1)
    return np.mean(reference == y_test), np.mean(got == y_test), np.mean(got == reference)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=10, help="invocations averaged per sample")
    parser.add_argument("--no-agreement", action="store_true", help="latency only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        files, image = _files(folder)
        wall, cpu = _latency(files, image, args)
        agreement = None if args.no_agreement else _agreement(folder)
    print(machine())
    print(f"MobileNetV2 {SIZE}x{SIZE}x3, 1000 classes, batch 1, {args.rounds} interleaved rounds of {args.calls} "
          f"calls; median ms per call (CPU ms)")
    for label, result in files.items():
        cells = "; ".join(f"{t} thread(s) {median(wall[label, t]) * 1e3:.2f} ms ({median(cpu[label, t]) * 1e3:.2f})"
                          for t in args.threads)
        print(f"  {label:30s} {result.size_bytes / 1e6:6.2f} MB  {cells}")
    for t in args.threads:
        def ratio(a, b):
            return paired_ratio(wall[b, t], wall[a, t])  # b's time over a's: above 1, a is faster
        print(f"{t} thread(s): keras_cnn int8 vs keras.applications int8 (LiteRT) "
              f"{ratio('keras_cnn tflite int8', 'keras.applications tflite int8'):.3f}x; "
              f"int8 speed-up over float32: LiteRT keras_cnn {ratio('keras_cnn tflite int8', 'keras_cnn tflite f32'):.3f}x, "
              f"keras.applications {ratio('keras.applications tflite int8', 'keras.applications tflite f32'):.3f}x, "
              f"onnxruntime QDQ {ratio('keras_cnn onnx int8', 'keras_cnn onnx f32'):.3f}x")
    if agreement:
        print(f"digits (32x32, 360 held out): float accuracy {agreement[0]:.3f}, onnxruntime int8 accuracy "
              f"{agreement[1]:.3f}, int8/float top-1 agreement {agreement[2]:.3f}")


if __name__ == "__main__":
    main()
