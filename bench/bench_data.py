"""Images per second of a full pass over a folder of PNGs: keras_cnn's loaders against Keras's.

    python bench/bench_data.py                          # 2,000 PNGs at 64x64 RGB, read at 64x64, 7 rounds
    python bench/bench_data.py --side 128 --size 64     # read downscaled (antialiased resize)
    python bench/bench_data.py --rounds 9 --json out.json

The folder holds scikit-learn's digits (10 class folders), upscaled to ``--side`` pixels and saved as RGB PNGs
in a temporary folder. Each arm is what a user calls, timed from the call to the last batch (listing, header
checks, parallel decoding, resizing, batches of 32, no shuffling):

* ``keras``: ``keras.utils.image_dataset_from_directory`` (its 0-255 floats, bilinear resize without antialias);
* ``dataset``: ``keras_cnn.data.dataset("folder:...", split="all")`` (floats in [0, 1], antialiased resize);
* ``app``: the apps' folder path, ``keras_cnn.app.sources.load`` then ``pipeline.evaluation`` (no cache).

``keras epoch`` and ``dataset epoch`` time one more pass over a dataset built once (what ``model.fit`` reads each
epoch after the first): listing and header checks are then behind, decoding is not (neither caches).

The arms alternate in a rotating order within each round (``_common.interleave``), so load from other processes
hits all of them; the table gives median images/s, the median of the per-round ratios to ``keras`` and the
spread (interquartile range over the median) of each arm's times.
"""

import argparse
import json
import os
import sys
import tempfile

from _common import interleave, machine, median, paired_ratio, spread


def write_folder(root, count, side):
    """``count`` digits as ``side`` x ``side`` RGB PNGs in one folder per class; returns ``root``."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index in range(count):
        pixels = (digits.images[index % len(digits.images)] * (255 / 16)).astype(np.uint8)
        folder = os.path.join(root, str(digits.target[index % len(digits.images)]))
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(pixels).resize((side, side), Image.BILINEAR).convert("RGB").save(
            os.path.join(folder, f"{index:05d}.png"))
    return root


def arms(root, size):
    """``{label: callable}``: each call is one full pass, listing included."""
    import keras

    from keras_cnn import data
    from keras_cnn.app import pipeline, preprocessing, sources

    def keras_pass():
        return _drain(keras.utils.image_dataset_from_directory(root, image_size=size, batch_size=32, shuffle=False,
                                                               verbose=False))

    def dataset_pass():
        return _drain(data.dataset(f"folder:{root}", split="all", image_size=size, channels=3, shuffle=False))

    def app_pass():
        split = sources.load(sources.parse(f"folder:{root}"), ("all",), size=size, channels=3)["all"]
        record = preprocessing.create((*size, 3), split.class_names)
        return _drain(pipeline.evaluation(split, record, batch_size=32, cache="none"))

    built_keras = keras.utils.image_dataset_from_directory(root, image_size=size, batch_size=32, shuffle=False,
                                                           verbose=False)
    built_ours = data.dataset(f"folder:{root}", split="all", image_size=size, channels=3, shuffle=False)
    return {"keras": keras_pass, "dataset": dataset_pass, "app": app_pass,
            "keras epoch": lambda: _drain(built_keras), "dataset epoch": lambda: _drain(built_ours)}


def _drain(dataset):
    count = 0
    for images, _ in dataset:
        count += int(images.shape[0])
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="PNG files")
    parser.add_argument("--side", type=int, default=64, help="stored side of the PNGs")
    parser.add_argument("--size", type=int, default=None, help="side read (default: --side)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", help="also write the samples to this file")
    args = parser.parse_args()
    size = (args.size or args.side,) * 2
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory() as root:
        write_folder(root, args.count, args.side)
        timed = arms(root, size)
        counts = {label: fn() for label, fn in timed.items()}
        if set(counts.values()) != {args.count}:
            raise SystemExit(f"the arms read different image counts: {counts}")
        wall, cpu = interleave(timed, args.rounds, warmup=1)
    print(f"{args.count} PNGs of {args.side}x{args.side} RGB read at {size[0]}x{size[1]}, batches of 32, "
          f"{args.rounds} rounds (medians)")
    print("| loader | images/s | s per pass | x keras (paired; epochs: x keras epoch) | spread | CPU s per pass |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label in timed:
        peer = "keras epoch" if label.endswith("epoch") else "keras"
        ratio = paired_ratio(wall[peer], wall[label])  # keras time / ours: > 1 is faster than Keras
        print(f"| {label} | {args.count / median(wall[label]):,.0f} | {median(wall[label]):.3f} | {ratio:.2f}x | "
              f"{spread(wall[label]):.0%} | {median(cpu[label]):.3f} |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"args": vars(args), "machine": machine(), "wall": wall, "cpu": cpu}, out, indent=1)


if __name__ == "__main__":
    sys.exit(main())
