"""Dense (FCN) evaluation vs explicit crops: VGG-16 on 384x384 images (seed 003 §2.5, §3.2).

At 384x384 the FCN gives a 6x6 map, one position per 224x224 window at stride 32: the same 36 windows that
explicit evaluation crops and runs through the classifier. The MAC count allows about 11x. ``--images N``
evaluates N images per run (dense: one FCN batch of N; crops: the 36 N crops in batches of ``--crop-batch``),
so the single-image latency and the per-image cost of evaluating a dataset are both measured. ``--xla``
compiles both sides with XLA. Runs alternate (A, B, A, B, ...) and the medians are compared, so machine noise
hits both sides alike.

Usage: python bench/bench_fcn.py [--images 1] [--repeats 5] [--crop-batch 12] [--xla]
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
    parser.add_argument("--images", type=int, default=1)
    parser.add_argument("--crop-batch", type=int, default=12)
    parser.add_argument("--xla", action="store_true")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    import keras_cnn
    from keras_cnn.fcn import total_stride

    model = keras_cnn.build("vgg16")
    fcn = keras_cnn.to_fcn(model)
    stride, native = total_stride(model), model.input_shape[1]
    images = np.random.default_rng(0).uniform(0, 255, (args.images, args.size, args.size, 3)).astype("float32")
    steps = (args.size - native) // stride + 1
    crops = np.stack([image[i * stride:i * stride + native, j * stride:j * stride + native]
                      for image in images for i in range(steps) for j in range(steps)])
    dense_fn = tf.function(lambda x: fcn(x, training=False), jit_compile=args.xla)
    crop_fn = tf.function(lambda x: model(x, training=False), jit_compile=args.xla)

    def dense():
        return dense_fn(images).numpy()

    def explicit():
        return np.concatenate([crop_fn(crops[i:i + args.crop_batch]).numpy()
                               for i in range(0, len(crops), args.crop_batch)])

    maps, crop_probs = dense(), explicit()  # warm-up (tracing) and a check that both see the same windows
    assert maps.shape[1:3] == (steps, steps)
    agree = np.mean(maps.reshape(-1, 1000).argmax(1) == crop_probs.argmax(1))
    times = {"dense": [], "crops": []}
    for _ in range(args.repeats):
        for name, fn in (("dense", dense), ("crops", explicit)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    dense_s, crops_s = statistics.median(times["dense"]), statistics.median(times["crops"])
    windows = steps * steps
    print(f"VGG-16, {args.images} image(s) of {args.size}x{args.size}{', XLA' if args.xla else ''}: {steps}x{steps} "
          f"map = {windows} windows of {native}x{native} each; crops in batches of {args.crop_batch}")
    print(f"dense (FCN) median {dense_s:.3f} s | {windows * args.images} explicit crops median {crops_s:.3f} s | "
          f"speed-up {crops_s / dense_s:.1f}x | top-1 agreement map vs crops {agree:.2f} "
          "(differs only where zero padding at crop borders differs from image context)")


if __name__ == "__main__":
    main()
