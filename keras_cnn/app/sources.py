"""Data sources as ``tf.data``: ``digits``, ``folder:PATH``, ``tfds:NAME[:SPLIT]`` and the multi-label
``multilabel-digits`` and ``listing:PATH`` (:mod:`keras_cnn.multilabel`), split into train/val/test.

Every split is a dataset of ``(image, label)`` with float32 images in [0, 1] already resized to a square
``size`` (decoding and resizing run in parallel, once per file; unreadable and over-limit files are skipped
and named from their headers, ``keras_cnn.data.scan_folder``; a folder whose images fit in ``IN_MEMORY_BYTES``
is decoded at load time, so the files TensorFlow cannot decode are named then too, before any training, and a
larger one names them when a pass reaches them, ``keras_cnn.data.decoded``), plus its length and the class
names. Splits are fixed: digits and folders
use a stratified split by ``seed`` with the given fractions; tfds takes the validation set from the end of the
training split and tests on ``test``. Multi-label sources give float32 multi-hot labels (``Split.multilabel``):
the multi-label digits split their source digits first (no digit in two splits), a listing is split at random
by ``seed`` (a stratified split is not defined for label sets) and read as a folder is.
"""

import dataclasses
import os

import numpy as np

from keras_cnn import _images, _validate, data

ROLES = ("train", "val", "test", "all")


@dataclasses.dataclass(frozen=True)
class Split:
    dataset: object  # tf.data.Dataset of (float32 image in [0, 1], int64 label or float32 multi-hot row)
    count: int
    class_names: tuple
    skipped_files: tuple = ()  # keras_cnn._images.Skipped (file, reason) of the whole source
    in_memory: bool = False  # decoded already and held in memory: nothing for a cache to save

    @property
    def multilabel(self):
        """Whether the labels are multi-hot rows (any number of classes per image)."""
        return self.dataset.element_spec[1].shape.rank == 1

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
    kind = data.parse_source(source, flag).kind
    if kind in ("folder", "listing"):  # the shell leaves the ~ of folder:~/x to us
        source = f"{kind}:" + os.path.expanduser(source.partition(":")[2])
    parsed = Source(source, **split)
    for name in ("val_fraction", "test_fraction"):
        _validate.check_float(f"--{name.replace('_', '-')}", getattr(parsed, name), minimum=0.01, maximum=0.9)
    if parsed.val_fraction + parsed.test_fraction >= 0.95:
        raise ValueError(f"--val-fraction + --test-fraction must leave images to train on (< 0.95); received "
                         f"{parsed.val_fraction} + {parsed.test_fraction}.")
    return parsed


def load(source, roles, *, size, channels, limit=None, max_pixels=None, shuffle_seed=None, class_names=None):
    """``{role: Split}`` for the requested roles among train, val, test, all (``limit``: first N of each).

    Folder images of more than ``max_pixels`` (default ``keras_cnn._images.MAX_PIXELS``) are skipped unread; a
    folder that fits in ``IN_MEMORY_BYTES`` is decoded now (``Split.in_memory``). With ``shuffle_seed`` each
    split is reshuffled every pass (after ``limit``): a folder's file names before decoding (or its images in
    memory), digits in memory, tfds images in a buffer of ``TFDS_SHUFFLE`` before resizing. ``class_names`` fixes
    a listing's classes and their order (a model's, to evaluate it: a label outside them is an error)."""
    for role in roles:
        _validate.check_choice("split", role, ROLES)
    if source.kind in ("folder", "listing"):
        return _folder(source, roles, tuple(size), channels, max_pixels, limit, shuffle_seed, class_names=class_names)
    read = {"digits": _digits, "tfds": _tfds, "multilabel-digits": _multilabel_digits}[source.kind]
    return read(source, roles, tuple(size), channels, limit, shuffle_seed)


TFDS_SHUFFLE = 10_000


def _limited(dataset, count, limit):
    """``(dataset, count)`` cut to the first ``limit`` elements."""
    if not limit or count <= limit:
        return dataset, count
    return dataset.take(limit), limit


def _fractions(source):
    return (1.0 - source.val_fraction - source.test_fraction, source.val_fraction, source.test_fraction)


def _digits(source, roles, size, channels, limit, shuffle_seed):
    splits = data.digits(image_size=size, channels=channels, split=_fractions(source), seed=source.seed)
    return _in_arrays(splits, tuple(str(i) for i in range(data.DIGITS_CLASSES)), roles, limit, shuffle_seed)


def _multilabel_digits(source, roles, size, channels, limit, shuffle_seed):
    from keras_cnn import multilabel

    if channels not in (1, 3):
        raise ValueError(f"--data multilabel-digits is grey, for models of 1 or 3 input channels; received "
                         f"--channels {channels}.")
    splits = multilabel.multilabel_digits(image_size=size, channels=channels, split=_fractions(source),
                                          seed=source.seed)
    names = tuple(splits.pop("class_names"))
    return _in_arrays(splits, names, roles, limit, shuffle_seed)


def _in_arrays(splits, names, roles, limit, shuffle_seed):
    """``{role: Split}`` of ``{"train": (x, y), "val": ..., "test": ...}`` arrays ("all": the three joined)."""
    import tensorflow as tf

    splits = dict(splits)
    splits["all"] = tuple(np.concatenate(parts) for parts in zip(*splits.values()))
    result = {}
    for role in roles:
        x, y = (part[:limit] for part in splits[role]) if limit else splits[role]
        dataset = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle_seed is not None:
            dataset = dataset.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
        result[role] = Split(dataset, len(y), names)
    return result


IN_MEMORY_BYTES = 2 << 30  # a folder whose float32 images fit is decoded at load time (pipeline.CACHE_BYTES)


def _folder(source, roles, size, channels, max_pixels, limit=None, shuffle_seed=None, batch_size=None,
            drop_remainder=False, in_memory=None, class_names=None):
    """Splits of a folder or a listing: decoded now and held in memory when they fit (``in_memory`` None) or when
    asked (True), else decoded lazily by ``keras_cnn.data.decoded`` (batched when ``batch_size`` is given)."""
    path = source.parsed.location
    folder, sizes = _scanned(source, max_pixels, class_names)
    parts = _split(source, roles, folder, limit)
    needed = np.unique(np.concatenate([parts[role] for role in roles]))
    if in_memory is None:
        in_memory = batch_size is None and len(needed) * 4 * size[0] * size[1] * channels <= IN_MEMORY_BYTES
    if in_memory:
        return _in_memory(source, roles, size, channels, folder, sizes, parts, needed, shuffle_seed, limit)
    if folder.skipped:
        data.warn_skipped(path, folder.skipped)
    result = {}
    for role in roles:
        dataset = data.decoded([folder.files[i] for i in parts[role]], folder.labels[parts[role]], size, channels,
                               sizes=[sizes[i] for i in parts[role]], shuffle_seed=shuffle_seed,
                               batch_size=batch_size, drop_remainder=drop_remainder, where=f"{source.source} ({role})")
        result[role] = Split(dataset, len(parts[role]), tuple(folder.class_names), tuple(folder.skipped))
    return result


def _scanned(source, max_pixels, class_names=None):
    """``(Folder, sizes)`` of a folder or a listing: the files whose headers pass, from the headers alone (the
    skipped ones are named later, with those TensorFlow cannot decode, in one warning)."""
    if source.kind == "folder":
        return data._scan(source.parsed.location, max_pixels=max_pixels, decode=False, warn=False)
    from keras_cnn import multilabel

    listing, usable, sizes = multilabel.scan_listing(source.parsed.location, class_names=class_names,
                                                     max_pixels=max_pixels, warn=False)
    print(f"listing {source.parsed.location}: {len(listing.files)} images, {len(listing.class_names)} classes, "
          f"{listing.unlabelled} without labels (allowed); images per class: "
          + ", ".join(f"{name} {count}" for name, count in listing.per_class.items()))
    return usable, sizes


def _in_memory(source, roles, size, channels, folder, sizes, parts, needed, shuffle_seed, limit):
    """``{role: Split}`` of the files a folder's splits need (``needed``: indices into ``folder.files``),
    decoded now, in one parallel pass: the counts are exact and every skipped file is named (one warning)
    before any training; a file TensorFlow cannot decode leaves its split. The pipeline's cache would hold
    these images anyway."""
    import tensorflow as tf

    path = source.parsed.location
    x, y, broken = data.decode_all([folder.files[i] for i in needed], folder.labels[needed], size, channels,
                                   sizes=[sizes[i] for i in needed], warn=False)
    skipped = [*folder.skipped, *broken]
    if skipped:
        data.warn_skipped(path, skipped)
    if not limit and source.kind == "folder":
        data._check_classes(path, folder.class_names, y.tolist(), "readable images")
    unusable = {item.file for item in broken}
    kept = [i for i in needed.tolist() if folder.files[i] not in unusable]
    row = {index: position for position, index in enumerate(kept)}  # folder index -> row of x
    result = {}
    for role in roles:
        rows = np.asarray([row[i] for i in parts[role].tolist() if i in row], dtype="int64")
        images = x if np.array_equal(rows, np.arange(len(y))) else tf.gather(x, rows)
        dataset = tf.data.Dataset.from_tensor_slices((images, y[rows]))
        if shuffle_seed is not None:
            dataset = dataset.shuffle(max(1, len(rows)), seed=shuffle_seed, reshuffle_each_iteration=True)
        result[role] = Split(dataset, len(rows), tuple(folder.class_names), tuple(skipped), in_memory=True)
    return result


def _split(source, roles, folder, limit):
    """``{role: indices into folder.files}``: stratified by ``source.seed`` (at random for multi-hot labels), each
    cut to its first ``limit``."""
    from sklearn.model_selection import train_test_split

    files, labels, names = folder.files, folder.labels, folder.class_names
    index = np.arange(len(files))
    parts = {"all": index}
    if set(roles) == {"all"}:
        return {"all": index[:limit] if limit else index}
    try:
        stratified = labels.ndim == 1
        train_val, parts["test"] = train_test_split(index, test_size=source.test_fraction,
                                                    stratify=labels if stratified else None, random_state=source.seed)
        parts["train"], parts["val"] = train_test_split(
            train_val, test_size=source.val_fraction / (1.0 - source.test_fraction),
            stratify=labels[train_val] if stratified else None, random_state=source.seed)
    except ValueError as error:  # too few images per class for a stratified split
        raise ValueError(f"folder {source.source!r}: {len(files)} images in {len(names)} classes cannot be split "
                         f"with --val-fraction {source.val_fraction} and --test-fraction "
                         f"{source.test_fraction}: {error}") from error
    return {role: parts[role][:limit] if limit else parts[role] for role in roles}


def _tfds(source, roles, size, channels, limit=None, shuffle_seed=None):
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
        names = tuple(names or range(_classes(dataset)))
        dataset, count = _limited(dataset, count, limit)
        if shuffle_seed is not None:  # the stored uint8 images, before resizing (tfds decodes them in parallel)
            dataset = dataset.shuffle(min(count, TFDS_SHUFFLE), seed=shuffle_seed, reshuffle_each_iteration=True)
        dataset = dataset.map(lambda image, label: (_images.to_model_range(image, size, channels),
                                                    tf.cast(label, tf.int64)), num_parallel_calls=tf.data.AUTOTUNE)
        result[role] = Split(dataset, count, names)
    return result


def _classes(dataset):
    return int(max(int(label) for _, label in dataset)) + 1


def from_json(values):
    """The :class:`Source` a preprocessing record saved (``Source.to_json``)."""
    return parse(values["source"], **{key: value for key, value in values.items() if key != "source"})
