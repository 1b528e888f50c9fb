"""Data sources. ``digits`` is real data that ships inside scikit-learn, so it works offline."""

import numpy as np

from keras_cnn import _validate

DIGITS_CLASSES = 10


def digits(image_size=(32, 32), channels=1, split=(0.6, 0.2, 0.2), seed=0):
    """scikit-learn's 1,797 handwritten digits (UCI optdigits, 8x8, 0..16) as a fixed stratified split.

    Returns ``{"train": (x, y), "val": (x, y), "test": (x, y)}`` with ``x`` float32 in ``[0, 1]`` of shape
    ``(n, height, width, channels)`` (bilinear resize, grey replicated across channels) and integer ``y``.
    The split is stratified by class and depends only on ``seed``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    height, width = (_validate.check_int("image_size", s, minimum=8) for s in image_size)
    channels = _validate.check_int("channels", channels, minimum=1)
    if len(split) != 3 or not np.isclose(sum(split), 1.0) or min(split) <= 0:
        raise ValueError(f"split must be three positive fractions (train, val, test) summing to 1; received {split}.")
    bunch = load_digits()
    x = _resize(bunch.images.astype("float32") / 16.0, height, width, channels)
    y = bunch.target.astype("int64")
    x_train, x_rest, y_train, y_rest = train_test_split(
        x, y, train_size=split[0], stratify=y, random_state=seed)
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, train_size=split[1] / (split[1] + split[2]), stratify=y_rest, random_state=seed)
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}


def _resize(images, height, width, channels):
    import tensorflow as tf

    x = tf.image.resize(images[..., None], (height, width), method="bilinear").numpy()
    return np.repeat(x, channels, axis=-1) if channels > 1 else x
