"""Data sources. ``digits`` is real data that ships inside scikit-learn, so it works offline."""

import os
import warnings
from typing import NamedTuple

import numpy as np

from keras_cnn import _images, _validate

DIGITS_CLASSES = 10
SOURCE_FORMS = "'digits', 'folder:PATH' or 'tfds:NAME[:SPLIT]'"


class DataSource(NamedTuple):
    """A parsed data-source string (:func:`parse_source`)."""

    kind: str  # "digits", "folder" or "tfds"
    location: str = None  # the folder, or the tensorflow-datasets name
    split: str = None  # the tfds split given after the name ("train[:80%]"), else None


def parse_source(source, name="source"):
    """``digits | folder:PATH | tfds:NAME[:SPLIT]`` -> :class:`DataSource`; anything else is a ``TypeError`` (not
    a string) or ``ValueError`` naming ``name`` (the argument or flag), the forms and what was received."""
    if not isinstance(source, str):
        raise TypeError(f"{name} must be {SOURCE_FORMS}; received {source!r}.")
    kind, _, rest = source.partition(":")
    if kind == "digits" and not rest:
        return DataSource(kind)
    if kind == "folder" and rest:
        return DataSource(kind, os.path.expanduser(rest))  # folder:~/x, as a shell would
    if kind == "tfds" and rest:
        dataset, _, split = rest.partition(":")
        return DataSource(kind, dataset, split or None)
    raise ValueError(f"{name} must be {SOURCE_FORMS}; received {source!r}.")


def digits(image_size=(32, 32), channels=1, split=(0.6, 0.2, 0.2), seed=0):
    """scikit-learn's 1,797 handwritten digits (UCI optdigits, 8x8, 0..16) as a fixed stratified split.

    Returns ``{"train": (x, y), "val": (x, y), "test": (x, y)}`` with ``x`` float32 in ``[0, 1]`` of shape
    ``(n, height, width, channels)`` (bilinear resize; grey brought to ``channels`` as a grey PNG would be, by
    :func:`keras_cnn._images.match_channels`) and integer ``y``.
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

    x = tf.image.resize(images[..., None], (height, width), method="bilinear")
    return _images.match_channels(x, channels).numpy()  # grey as a file is: RGB replicated, alpha opaque


def load_images(source, *, image_size, channels, split="train", limit=None, data_dir=None, download=False,
                max_pixels=None):
    """Images in ``[0, 1]`` resized to ``image_size``, labels and class names from a data source string.

    ``source`` is ``"digits"`` (bundled; ``split`` train/val/test), ``"folder:PATH"`` (one sub-folder per
    class, read as :func:`scan_folder` does: unreadable, corrupt or over-``max_pixels`` files are skipped and
    named in a warning) or ``"tfds:NAME[:SPLIT]"`` (tensorflow-datasets, read from ``data_dir``; downloaded only
    with ``download=True``, otherwise a clear error when it is not prepared there).
    Returns ``(x, y, class_names)``; ``limit`` (at least 1) keeps the first ``limit`` images.
    """
    parsed = parse_source(source)
    image_size, channels, limit = _checked_shape(image_size, channels, limit)
    if parsed.kind == "digits":
        x, y = digits(image_size=image_size, channels=channels)[_validate.check_choice(
            "split", split, ("train", "val", "test"))]
        names = [str(i) for i in range(DIGITS_CLASSES)]
    elif parsed.kind == "folder":
        x, y, names = _folder(parsed.location, image_size, channels, limit, max_pixels)
    else:
        x, y, names = _tfds(parsed.location, parsed.split or split, image_size, channels, limit, data_dir, download)
    return (x[:limit], y[:limit], names) if limit is not None else (x, y, names)


def _checked_shape(image_size, channels, limit):
    """``image_size`` a pair of integers >= 1, ``channels`` 1-4 (what an image file can hold), ``limit`` None or
    >= 1: checked before any decoding (0 or -1 would otherwise keep every image, or drop the last)."""
    if isinstance(image_size, (str, bytes)) or not hasattr(image_size, "__len__") or len(image_size) != 2:
        raise TypeError(f"image_size must be a (height, width) pair; received {image_size!r}.")
    size = tuple(_validate.check_int(f"image_size[{i}]", s, minimum=1) for i, s in enumerate(image_size))
    channels = _validate.check_int("channels", channels, minimum=1, maximum=4)
    return size, channels, None if limit is None else _validate.check_int("limit", limit, minimum=1)


class Folder(NamedTuple):
    """The usable images of a class-per-sub-folder tree (:func:`scan_folder`)."""

    files: list  # paths, class by class in :func:`keras_cnn._images.list_images` order
    labels: np.ndarray  # int64 class index of each file
    class_names: list
    skipped: list  # :class:`keras_cnn._images.Skipped` (file, reason): unreadable, corrupt or over the limit


def scan_folder(path, *, workers=8, max_pixels=None):
    """The readable images of a class-per-sub-folder tree: a :class:`Folder` ``(files, labels, class_names,
    skipped)``.

    Read with ``keras.utils.image_dataset_from_directory``'s rules (:func:`keras_cnn._images.list_images`):
    the classes are the sorted sub-folders not starting with "."; each class's images are its files ending in
    .bmp, .gif, .jpeg, .jpg or .png (any case), found recursively. Stricter than Keras: hidden files and folders
    are skipped at every depth; a tree with no images, fewer than two classes or a class folder without images
    is a ``ValueError`` naming the folder(s), before anything is decoded. Then every header is checked (over
    ``max_pixels``, default ``keras_cnn._images.MAX_PIXELS``, is never decoded) and every other file decoded once
    (in ``workers`` threads, where TensorFlow's decoders release the GIL), so an unreadable, corrupt or
    over-limit file is skipped and named here, with a warning, instead of failing a ``tf.data`` pipeline in the
    middle of an epoch; a class left with no readable image is a ``ValueError`` too.
    """
    candidates, names = _listing(path)
    skipped = _unusable([file for file, _ in candidates], max_pixels, workers)
    if skipped:
        warnings.warn(f"folder {path!r}: skipped {len(skipped)} unreadable or corrupt file(s): "
                      f"{_images.name_skipped(skipped)}.", stacklevel=2)
    bad = {item.file for item in skipped}
    kept = [(file, label) for file, label in candidates if file not in bad]
    _check_classes(path, names, [label for _, label in kept], "readable images")
    return Folder([f for f, _ in kept], np.asarray([label for _, label in kept], dtype="int64"), names, skipped)


def _listing(path):
    """``([(file, label)], class_names)``: every image file of the tree, refused when a class has none."""
    if not isinstance(path, str) or not os.path.isdir(path):
        raise ValueError(f"folder:PATH needs an existing folder with one sub-folder per class; received {path!r}.")
    names = _images.class_folders(path)
    if not names:
        raise ValueError(f"folder {path!r} has no class sub-folders (one per class; names starting with '.' are "
                         f"not classes).")
    candidates = [(file, label) for label, name in enumerate(names)
                  for file in _images.list_images(os.path.join(path, name))]
    _check_classes(path, names, [label for _, label in candidates], "images")
    return candidates, names


def _check_classes(path, names, labels, what):
    """Refuse a tree without ``what``, with fewer than two classes, or with a class that has none."""
    kinds = f"{what} ({', '.join(_images.IMAGE_EXTENSIONS)}, searched recursively)"
    if not labels:
        raise ValueError(f"folder {path!r} holds no {kinds}.")
    if len(names) < 2:
        raise ValueError(f"folder {path!r} has {len(names)} class sub-folder ({names[0]!r}); a classifier needs at "
                         f"least two.")
    present = set(labels)
    empty = [name for label, name in enumerate(names) if label not in present]
    if empty:
        raise ValueError(f"folder {path!r}: class folder(s) {', '.join(map(repr, empty))} hold no {kinds}; add "
                         f"images or remove the folder(s).")


def _unusable(files, max_pixels, workers):
    """:class:`keras_cnn._images.Skipped` for each file over the pixel limit (headers read one by one: the check
    silences a process-wide warning) or that TensorFlow cannot decode (decoded in ``workers`` threads)."""
    from concurrent.futures import ThreadPoolExecutor

    limit = _images.check_max_pixels(max_pixels)
    headers = [_images.header_problem(file, limit) for file in files]
    decodable = [file for file, problem in zip(files, headers) if problem is None]
    with ThreadPoolExecutor(workers) as pool:
        decoded = dict(zip(decodable, pool.map(_images.decode_problem, decodable)))
    return [_images.Skipped(file, problem or decoded[file]) for file, problem in zip(files, headers)
            if problem or decoded[file]]


def _folder(path, image_size, channels, limit, max_pixels=None):
    files, labels, names, _ = scan_folder(path, max_pixels=max_pixels)
    images = [_images.decode_image(file, channels, image_size).numpy() for file in files[:limit]]
    return np.stack(images), labels[:limit], names


def tfds_dataset(name, split, *, data_dir=None, download=False):
    """``(dataset of (image uint8, label), class_names)`` from tensorflow-datasets, read from ``data_dir``.

    Downloads only with ``download=True``; a dataset that is not prepared there (or unknown, or that cannot be
    fetched) is a ``ValueError`` saying so, never a traceback from inside tensorflow-datasets.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ValueError("tfds: sources need tensorflow-datasets (pip install tensorflow-datasets).") from error
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if download:
            builder.download_and_prepare()
        dataset = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    except Exception as error:  # tfds raises many types for a missing, undownloadable or unknown dataset
        hint = "and could not be downloaded" if download else \
            "(--download or download=True fetches it; needs network)"
        raise ValueError(f"tensorflow-datasets {name!r} (split {split!r}) is not prepared in "
                         f"data_dir={data_dir!r} {hint}: {error}") from error
    names = builder.info.features["label"].names if "label" in builder.info.features else None
    return dataset, names


def _tfds(name, split, image_size, channels, limit, data_dir, download):
    dataset, names = tfds_dataset(name, split, data_dir=data_dir, download=download)
    pairs = list(dataset.take(limit) if limit else dataset)
    x = np.stack([_images.to_model_range(image, image_size, channels).numpy() for image, _ in pairs])
    return x, np.asarray([int(label) for _, label in pairs]), names
