"""Dense (FCN) evaluation vs explicit crops: VGG-16 on one 384x384 image (seed 003 §2.5, §3.2).

At 384x384 the FCN gives a 6x6 map, one position per 224x224 window at stride 32: the same 36 windows that
explicit evaluation crops and runs one by one. The MAC count allows about 11x. Runs alternate (A, B, A, B, ...)
and the medians are compared, so machine noise hits both sides alike.

Usage: python bench/bench_fcn.py [--repeats 5] [--threads N]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=384)
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    import keras_cnn
    from keras_cnn.fcn import total_stride

    model = keras_cnn.build("vgg16")
    fcn = keras_cnn.to_fcn(model)
    stride, native = total_stride(model), model.input_shape[1]
    image = np.random.default_rng(0).uniform(0, 255, (1, args.size, args.size, 3)).astype("float32")
    steps = (args.size - native) // stride + 1
    crops = np.stack([image[0, i * stride:i * stride + native, j * stride:j * stride + native]
                      for i in range(steps) for j in range(steps)])
    dense_fn = tf.function(lambda x: fcn(x, training=False))
    crop_fn = tf.function(lambda x: model(x, training=False))

    def dense():
        return dense_fn(image).numpy()

    def explicit():
        return np.concatenate([crop_fn(crops[i:i + 12]).numpy() for i in range(0, len(crops), 12)])

    maps, crop_probs = dense(), explicit()  # warm-up (tracing) and a check that both see the same windows
    assert maps.shape[1:3] == (steps, steps)
    agree = np.mean(maps[0].reshape(-1, 1000).argmax(1) == crop_probs.argmax(1))
    times = {"dense": [], "crops": []}
    for _ in range(args.repeats):
        for name, fn in (("dense", dense), ("crops", explicit)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    dense_s, crops_s = statistics.median(times["dense"]), statistics.median(times["crops"])
    print(f"VGG-16, {args.size}x{args.size}: {steps}x{steps} map = {steps * steps} windows of {native}x{native}")
    print(f"dense (FCN) median {dense_s:.3f} s | {steps * steps} explicit crops median {crops_s:.3f} s | "
          f"speed-up {crops_s / dense_s:.1f}x | top-1 agreement map vs crops {agree:.2f} "
          "(differs only where zero padding at crop borders differs from image context)")


if __name__ == "__main__":
    main()
