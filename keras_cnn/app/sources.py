"""Data sources as ``tf.data``: ``digits``, ``folder:PATH`` and ``tfds:NAME[:SPLIT]`` split into train/val/test.

Every split is a dataset of ``(image, label)`` with float32 images in [0, 1] already resized to a square
``size`` (decoding and resizing run in parallel; unreadable, corrupt or over-limit files were skipped and named
before: ``keras_cnn.data.scan_folder``), plus its length and the class names. Splits are fixed: digits and folders
use a stratified split by ``seed`` with the given fractions; tfds takes the validation set from the end of the
training split and tests on ``test``.
"""

import dataclasses
import os

import numpy as np

from keras_cnn import _images, _validate, data

ROLES = ("train", "val", "test", "all")


@dataclasses.dataclass(frozen=True)
class Split:
    dataset: object  # tf.data.Dataset of (float32 image in [0, 1], int64 label)
    count: int
    class_names: tuple
    skipped_files: tuple = ()  # keras_cnn._images.Skipped (file, reason) of the whole source, before the split

    @property
    def skipped(self):
        """How many files of the source were skipped (unreadable, corrupt or over the pixel limit)."""
        return len(self.skipped_files)


@dataclasses.dataclass(frozen=True)
class Source:
    """A parsed ``--data`` value and how it is split (all of it is recorded with the model)."""

    source: str
    seed: int = 0
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    data_dir: str = None
    download: bool = False

    @property
    def parsed(self):
        """The :class:`keras_cnn.data.DataSource`: kind, folder or dataset name, tfds split."""
        return data.parse_source(self.source)

    @property
    def kind(self):
        return self.parsed.kind

    def to_json(self):
        return dataclasses.asdict(self)


def parse(source, flag="--data", **split):
    """Validate ``source`` (the value of ``flag``) and the split fractions into a :class:`Source` (``folder:~/x``
    with ``~`` expanded)."""
    if data.parse_source(source, flag).kind == "folder":  # the shell leaves the ~ of folder:~/x to us
        source = "folder:" + os.path.expanduser(source.partition(":")[2])
    parsed = Source(source, **split)
    for name in ("val_fraction", "test_fraction"):
        _validate.check_float(f"--{name.replace('_', '-')}", getattr(parsed, name), minimum=0.01, maximum=0.9)
    if parsed.val_fraction + parsed.test_fraction >= 0.95:
        raise ValueError(f"--val-fraction + --test-fraction must leave images to train on (< 0.95); received "
                         f"{parsed.val_fraction} + {parsed.test_fraction}.")
    return parsed


def load(source, roles, *, size, channels, limit=None, max_pixels=None):
    """``{role: Split}`` for the requested roles among train, val, test, all (``limit``: first N of each).

    Folder images of more than ``max_pixels`` (default ``keras_cnn._images.MAX_PIXELS``) are skipped unread."""
    for role in roles:
        _validate.check_choice("split", role, ROLES)
    if source.kind == "folder":
        splits = _folder(source, roles, tuple(size), channels, max_pixels)
    else:
        splits = {"digits": _digits, "tfds": _tfds}[source.kind](source, roles, tuple(size), channels)
    return {role: _limited(split, limit) for role, split in splits.items()}


def _limited(split, limit):
    if not limit or split.count <= limit:
        return split
    return dataclasses.replace(split, dataset=split.dataset.take(limit), count=limit)


def _fractions(source):
    return (1.0 - source.val_fraction - source.test_fraction, source.val_fraction, source.test_fraction)


def _digits(source, roles, size, channels):
    import tensorflow as tf

    splits = data.digits(image_size=size, channels=channels, split=_fractions(source), seed=source.seed)
    splits["all"] = tuple(np.concatenate(parts) for parts in zip(*splits.values()))
    names = tuple(str(i) for i in range(data.DIGITS_CLASSES))
    return {role: Split(tf.data.Dataset.from_tensor_slices(splits[role]), len(splits[role][1]), names)
            for role in roles}


def _folder(source, roles, size, channels, max_pixels):
    from sklearn.model_selection import train_test_split

    files, labels, names, skipped = data.scan_folder(source.parsed.location, max_pixels=max_pixels)
    index = np.arange(len(files))
    parts = {"all": index}
    try:
        train_val, parts["test"] = train_test_split(index, test_size=source.test_fraction, stratify=labels,
                                                    random_state=source.seed)
        parts["train"], parts["val"] = train_test_split(
            train_val, test_size=source.val_fraction / (1.0 - source.test_fraction), stratify=labels[train_val],
            random_state=source.seed)
    except ValueError as error:  # too few images per class for a stratified split
        raise ValueError(f"folder {source.source!r}: {len(files)} images in {len(names)} classes cannot be split "
                         f"with --val-fraction {source.val_fraction} and --test-fraction "
                         f"{source.test_fraction}: {error}") from error
    return {role: Split(_decoded([files[i] for i in parts[role]], labels[parts[role]], size, channels),
                        len(parts[role]), tuple(names), tuple(skipped)) for role in roles}


def _decoded(files, labels, size, channels):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((files, labels))
    return dataset.map(lambda file, label: (_images.decode_image(file, channels, size), label),
                       num_parallel_calls=tf.data.AUTOTUNE)


def _tfds(source, roles, size, channels):
    import tensorflow as tf

    name, explicit = source.parsed.location, source.parsed.split
    result = {}
    for role in roles:
        split = (explicit or "train") if role in ("train", "val") else (explicit or ("test" if role == "test"
                                                                                     else "train"))
        dataset, names = data.tfds_dataset(name, split, data_dir=source.data_dir, download=source.download)
        count = int(dataset.cardinality())
        count = count if count >= 0 else int(dataset.reduce(0, lambda n, _: n + 1))  # unknown: count once
        if role in ("train", "val"):  # the validation images are the last val_fraction of the training split
            n_val = max(1, round(count * source.val_fraction))
            dataset = dataset.take(count - n_val) if role == "train" else dataset.skip(count - n_val)
            count = count - n_val if role == "train" else n_val
        dataset = dataset.map(lambda image, label: (_images.to_model_range(image, size, channels), label),
                              num_parallel_calls=tf.data.AUTOTUNE)
        result[role] = Split(dataset, count, tuple(names or range(_classes(dataset))))
    return result


def _classes(dataset):
    return int(max(int(label) for _, label in dataset)) + 1


def from_json(values):
    """The :class:`Source` a preprocessing record saved (``Source.to_json``)."""
    return parse(values["source"], **{key: value for key, value in values.items() if key != "source"})
