"""Data sources: :func:`dataset` (batched ``tf.data``, for ``model.fit``) and :func:`load_images` (NumPy arrays)
of ``digits``, ``folder:PATH`` and ``tfds:NAME[:SPLIT]``. ``digits`` is real data that ships inside
scikit-learn, so it works offline. Folders are decoded in parallel on ``tf.data``, once per file
(``bench/bench_data.py`` compares them with ``keras.utils.image_dataset_from_directory``)."""

import io
import os
import warnings
from typing import NamedTuple

import numpy as np

from keras_cnn import _images, _validate

DIGITS_CLASSES = 10
SOURCE_FORMS = ("'digits', 'folder:PATH', 'tfds:NAME[:SPLIT]', or multi-label 'multilabel-digits' or "
                "'listing:PATH' (a CSV/JSON listing, or a folder holding labels.csv or labels.json)")
MULTILABEL_KINDS = ("multilabel-digits", "listing")  # sources with any number of labels per image


class DataSource(NamedTuple):
    """A parsed data-source string (:func:`parse_source`)."""

    kind: str  # "digits", "folder", "tfds", "multilabel-digits" or "listing"
    location: str = None  # the folder, the listing (or its folder), or the tensorflow-datasets name
    split: str = None  # the tfds split given after the name ("train[:80%]"), else None


def parse_source(source, name="source"):
    """``digits | folder:PATH | tfds:NAME[:SPLIT]`` -> :class:`DataSource`; anything else is a ``TypeError`` (not
    a string) or ``ValueError`` naming ``name`` (the argument or flag), the forms and what was received."""
    if not isinstance(source, str):
        raise TypeError(f"{name} must be {SOURCE_FORMS}; received {source!r}.")
    kind, _, rest = source.partition(":")
    if kind in ("digits", "multilabel-digits") and not rest:
        return DataSource(kind)
    if kind in ("folder", "listing") and rest:
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

    ``source`` is ``"digits"`` (bundled; ``split`` train/val/test), ``"multilabel-digits"`` or ``"listing:PATH"``
    (multi-label, :mod:`keras_cnn.multilabel`: float32 multi-hot labels), ``"folder:PATH"`` (one sub-folder per
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
    elif parsed.kind in MULTILABEL_KINDS:
        x, y, names = _multilabel(source, split, image_size, channels, limit, max_pixels)
    else:
        x, y, names = _tfds(parsed.location, parsed.split or split, image_size, channels, limit, data_dir, download)
    return (x[:limit], y[:limit], names) if limit is not None else (x, y, names)


SPLITS = ("train", "val", "test", "all")
AUGMENTATIONS = {  # named recipes of keras_cnn.app.augment.Recipe fields (the train app's flags)
    "flip": {"flip": True},  # --flip
    "shift": {"translate": 0.08, "rotate": 0.03},  # --translate 0.08 --rotate 0.03: the digits recipe
    "flip+shift": {"flip": True, "translate": 0.08, "rotate": 0.03},
}


def dataset(source, *, image_size, channels, split="train", batch_size=32, shuffle=None, seed=0, augment=None,
            limit=None, drop_remainder=False, val_fraction=0.2, test_fraction=0.2, data_dir=None, download=False,
            max_pixels=None):
    """A batched, prefetched ``tf.data.Dataset`` of ``(images, labels)``: float32 images in [0, 1] of shape
    ``(batch, height, width, channels)`` (what :func:`load_images` returns and the models take) and int64 labels
    (float32 multi-hot rows ``(batch, K)`` for the multi-label sources ``"multilabel-digits"`` and
    ``"listing:PATH"``, :mod:`keras_cnn.multilabel`, split at random by ``seed``).

    ``source`` is ``"digits"``, ``"folder:PATH"`` or ``"tfds:NAME[:SPLIT]"``, split as ``keras-cnn train
    --data`` splits it: ``split`` is ``"train"``, ``"val"``, ``"test"`` or ``"all"``; digits and folders are
    split stratified by class with ``val_fraction`` and ``test_fraction`` (fixed by ``seed``), tfds validates on
    the last ``val_fraction`` of its training split and tests on ``test`` (or on the ``SPLIT`` given).
    Folders are read with Keras's listing rules (:func:`scan_folder` with ``decode=False``: unreadable and
    over-``max_pixels`` files skipped from their headers and named in a warning) and decoded in parallel
    (:func:`decoded`: a file TensorFlow cannot decode is skipped and named when the pass reaches it).

    ``shuffle`` (default: only for ``"train"``) reshuffles every pass, reproducibly from ``seed``; otherwise the
    order is the listing's. ``augment`` is None, a name in ``AUGMENTATIONS`` or a
    :class:`keras_cnn.app.augment.Recipe` without crops, scale jitter or PCA noise (those need the train app's
    stored sizes and statistics). ``limit`` keeps the first ``limit`` images of the split. Like
    ``keras.utils.image_dataset_from_directory``, the result carries ``class_names`` (and ``skipped_files``:
    :class:`keras_cnn._images.Skipped` of the header check).
    """
    import tensorflow as tf

    from keras_cnn.app import augment as augmentation, sources

    image_size, channels, limit = _checked_shape(image_size, channels, limit)
    split = _validate.check_choice("split", split, SPLITS)
    batch_size = _validate.check_int("batch_size", batch_size, minimum=1)
    shuffle = split == "train" if shuffle is None else _validate.check_bool("shuffle", shuffle)
    seed = _validate.check_int("seed", seed, minimum=0)
    _validate.check_bool("drop_remainder", drop_remainder)
    recipe = _recipe(augment, augmentation)
    fractions = {name: _validate.check_float(name, value, minimum=0.01, maximum=0.9)
                 for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction))}
    if sum(fractions.values()) >= 0.95:
        raise ValueError(f"val_fraction + test_fraction must leave images to train on (< 0.95); received "
                         f"{val_fraction} + {test_fraction}.")
    parse_source(source)
    parsed = sources.parse(source, "source", seed=seed, data_dir=data_dir, download=download, **fractions)
    per_image = recipe is not None and recipe.per_image
    shuffle_seed = seed if shuffle else None
    if parsed.kind == "folder" and not per_image:  # batched and counted in one step (decoded)
        part = sources._folder(parsed, (split,), image_size, channels, max_pixels, limit, shuffle_seed,
                               batch_size, drop_remainder, in_memory=False)[split]
        result = part.dataset
    else:
        if parsed.kind == "folder":  # decoded lazily, image by image, for the per-image augmentation
            part = sources._folder(parsed, (split,), image_size, channels, max_pixels, limit, shuffle_seed,
                                   in_memory=False)[split]
        else:
            part = sources.load(parsed, (split,), size=image_size, channels=channels, limit=limit,
                                max_pixels=max_pixels, shuffle_seed=shuffle_seed)[split]
        result = _augmented(part.dataset, recipe, image_size, seed, augmentation)
        result = result.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=tf.data.AUTOTUNE)
        if int(result.cardinality()) < 0:  # as decoded() does for its batches
            expected = part.count // batch_size if drop_remainder else -(-part.count // batch_size)
            result = result.apply(tf.data.experimental.assert_cardinality(expected))
    batch_layers = augmentation.per_batch(recipe, seed) if recipe is not None else None
    if batch_layers is not None:  # sequential: the layers' random state advances in one order
        result = result.map(lambda images, labels: (batch_layers(images, training=True), labels))
    result = result.prefetch(tf.data.AUTOTUNE)
    result.class_names = list(part.class_names)
    result.skipped_files = list(part.skipped_files)
    return result


def _recipe(augment, augmentation):
    """``augment`` (None, a name in AUGMENTATIONS or a Recipe) as a Recipe or None."""
    if augment is None:
        return None
    if isinstance(augment, str):
        return augmentation.Recipe(**AUGMENTATIONS[_validate.check_choice("augment", augment,
                                                                          tuple(AUGMENTATIONS))])
    if not isinstance(augment, augmentation.Recipe):
        raise TypeError(f"augment must be None, one of {', '.join(map(repr, AUGMENTATIONS))} or a "
                        f"keras_cnn.app.augment.Recipe; received {augment!r}.")
    if augment.crop or augment.scale_jitter is not None or augment.pca_noise:
        raise ValueError(f"augment: crops, scale jittering and PCA noise need the train app's stored sizes and "
                         f"pixel statistics (keras-cnn train --random-crop, --scale-jitter, --pca-noise); received "
                         f"{augment!r}.")
    return augment


def _augmented(dataset, recipe, image_size, seed, augmentation):
    """Per-image random flips, with one stateless seed pair per image (as the train app's pipeline)."""
    import tensorflow as tf

    if recipe is None or not recipe.per_image:
        return dataset
    fn = augmentation.per_image(recipe, image_size)
    randoms = tf.data.Dataset.random(seed=seed).batch(2)
    return tf.data.Dataset.zip((dataset, randoms)).map(lambda pair, pair_seed: (fn(pair[0], pair_seed), pair[1]),
                                                       num_parallel_calls=tf.data.AUTOTUNE)


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


def scan_folder(path, *, workers=8, max_pixels=None, decode=True):
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
    middle of an epoch; a class left with no readable image is a ``ValueError`` too. With ``decode=False`` only
    the headers are read (what :func:`dataset` does: it skips and names the files TensorFlow cannot decode when
    its pass reaches them, :func:`decoded`, instead of decoding every file twice).
    """
    return _scan(path, workers, max_pixels, decode)[0]


def _scan(path, workers=8, max_pixels=None, decode=True, warn=True):
    """:func:`scan_folder`'s ``Folder`` and the ``(height, width)`` of each of its files, from the headers."""
    candidates, names = _listing(path)
    usable, skipped, sizes = _usable([file for file, _ in candidates], max_pixels, workers, decode)
    if skipped and warn:
        warn_skipped(path, skipped)
    kept = [candidates[i] for i in usable]
    _check_classes(path, names, [label for _, label in kept], "readable images")
    folder = Folder([f for f, _ in kept], np.asarray([label for _, label in kept], dtype="int64"), names, skipped)
    return folder, [sizes[file] for file in folder.files]


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


def warn_skipped(path, skipped):
    """The folder's one warning naming every skipped file with its reason (:func:`scan_folder`'s)."""
    warnings.warn(f"folder {path!r}: skipped {len(skipped)} unreadable or corrupt file(s): "
                  f"{_images.name_skipped(skipped)}.", stacklevel=3)


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


def _usable(files, max_pixels, workers=8, decode=True):
    """``(kept, skipped, sizes)``: the indices of the ``files`` that passed :func:`_unusable`'s checks (in order),
    the :class:`keras_cnn._images.Skipped` others, and ``{file: (height, width)}`` from the headers."""
    skipped, sizes = _unusable(files, max_pixels, workers, decode)
    bad = {item.file for item in skipped}
    return [i for i, file in enumerate(files) if file not in bad], skipped, sizes


def _unusable(files, max_pixels, workers, decode=True):
    """``(skipped, sizes)``: :class:`keras_cnn._images.Skipped` for each file over the pixel limit (headers read
    one by one: the check silences a process-wide warning) or, with ``decode``, that TensorFlow cannot decode
    (decoded in ``workers`` threads); and ``{file: (height, width)}`` from the headers."""
    from concurrent.futures import ThreadPoolExecutor

    limit = _images.check_max_pixels(max_pixels)
    headers = [_images.header(file, limit) for file in files]
    sizes = {file: size for file, (_, size) in zip(files, headers)}
    problems = [problem for problem, _ in headers]
    decoded = {}
    if decode:
        decodable = [file for file, problem in zip(files, problems) if problem is None]
        with ThreadPoolExecutor(workers) as pool:
            decoded = dict(zip(decodable, pool.map(_images.decode_problem, decodable)))
    return [_images.Skipped(file, problem or decoded[file]) for file, problem in zip(files, problems)
            if problem or decoded.get(file)], sizes


def _multilabel(source, split, image_size, channels, limit, max_pixels):
    """A multi-label source's split as ``keras-cnn train`` splits it (default fractions, seed 0): arrays with
    float32 multi-hot labels."""
    from keras_cnn.app import pipeline, sources

    split = _validate.check_choice("split", split, SPLITS)
    part = sources.load(sources.parse(source, "source"), (split,), size=image_size, channels=channels, limit=limit,
                        max_pixels=max_pixels)[split]
    x, y = pipeline.arrays(part)
    return x, y, list(part.class_names)


def _folder(path, image_size, channels, limit, max_pixels=None):
    folder, sizes = _scan(path, max_pixels=max_pixels, decode=False)
    x, y, _ = decode_all(folder.files[:limit], folder.labels[:limit], image_size, channels, sizes=sizes[:limit],
                         where=f"folder {path!r}")
    return x.numpy(), y, folder.class_names


def decode_all(files, labels, image_size, channels, *, sizes=None, where="folder", warn=True):
    """``(x, y, skipped)``: every decodable file of ``files`` as float32 in [0, 1] at ``image_size`` (a
    ``tf.Tensor``, from one parallel ``tf.data`` pass: :func:`_batches`; pixels as :func:`decoded`), its label
    (NumPy), and the :class:`keras_cnn._images.Skipped` files TensorFlow could not decode, named in a warning."""
    import tensorflow as tf

    files = list(files)
    # read to the end (an iterator left open waits for its threads), join the (often uint8) batches, then one
    # scaling op over all of them
    skipped = []  # the files the pass could not decode, in file order (_recover runs once a pass, in index order)
    parts = list(_batches(files, labels, image_size, channels, sizes=sizes, batch_size=256, where=where,
                          report=skipped.extend, planned_count=False, scale=True))
    if not parts:
        empty = _label_array(labels)[:0]  # int64 (0,) or float32 multi-hot (0, K)
        x, y, kept = tf.zeros((0, *image_size, channels)), empty, np.zeros((0,), "int64")
    else:
        x = tf.concat([part[0] for part in parts], 0)
        y = np.concatenate([part[1].numpy() for part in parts])
        kept = np.concatenate([part[2].numpy() for part in parts])
    if np.any(np.diff(kept) < 0):  # a recovered batch comes last (even when every file came back): file order
        order = np.argsort(kept)
        x, y = tf.gather(x, order), y[order]
    if skipped and warn:
        warnings.warn(f"{where}: skipped {len(skipped)} file(s) TensorFlow could not decode: "
                      f"{_images.name_skipped(skipped)}.", stacklevel=2)
    return x, y, skipped


def _arrays(batches):
    """``(x, y)`` of a dataset of ``(images, labels)`` batches."""
    images, labels = [], []
    for x, y in batches:
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


COUNTED_BATCH = 64  # decoded() without a batch_size decodes and checks in batches of this many


def decoded(files, labels, image_size, channels, *, sizes=None, shuffle_seed=None, batch_size=None,
            drop_remainder=False, where="folder"):
    """``tf.data.Dataset`` of ``(float32 image in [0, 1] at image_size, label)`` of image files (labels int64
    class indices, or float32 multi-hot rows when ``labels`` is ``(N, K)``: :mod:`keras_cnn.multilabel`), decoded
    and resized in parallel in file order, or reshuffled every pass with ``shuffle_seed`` (the file names are
    shuffled, not the decoded images, so the buffer costs nothing); batches of ``batch_size`` when given.

    Pixels as :func:`keras_cnn._images.decode_image`; ``sizes`` (each file's ``(height, width)`` from its header)
    let every image skip or take the resize without a per-image branch. A file TensorFlow cannot decode
    (truncated, corrupt) is dropped, not an error in the middle of an epoch, and the pass that dropped it ends
    with a warning naming each such file (:func:`_batches`): every file is decoded once per pass, as Keras's
    loader does. List the files with :func:`scan_folder` (``decode=False`` at least), which refuses over-limit
    files unread.
    """
    import tensorflow as tf

    files = list(files)
    batches = _batches(files, labels, image_size, channels, sizes=sizes, shuffle_seed=shuffle_seed,
                       batch_size=batch_size or COUNTED_BATCH, drop_remainder=drop_remainder, where=where,
                       scale=True, indexed=False)
    if batch_size is None:
        return batches.unbatch()
    # Keras's fit reads the number of batches from the cardinality (ignore_errors leaves it unknown); _batches
    # keeps it on every pass that has enough decodable files, and ends any other pass with an error naming them
    expected = len(files) // batch_size if drop_remainder else -(-len(files) // batch_size)
    return batches.apply(tf.data.experimental.assert_cardinality(expected))


def _decoders():
    """How many files a folder pipeline decodes at once: twice the usable cores, fixed. ``AUTOTUNE`` starts
    every iterator (every epoch) from little parallelism and models the pipeline on a core of its own; on two
    cores that cost 10-25% of a pass over 2,000 PNGs (``bench/bench_data.py``). Twice the cores keeps the cores
    busy while files are read."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(2, 2 * cores)


def _batches(files, labels, image_size, channels, *, sizes, batch_size, shuffle_seed=None, drop_remainder=False,
             where="folder", report=None, planned_count=True, scale=False, indexed=True):
    """Batches of ``(pixels as _per_image gives them, label, index into files)``: every decodable file once per
    pass, in ``-(-len(files) // batch_size)`` batches (``len(files) // batch_size`` full ones with
    ``drop_remainder``) as long as enough files decode, so the cardinality Keras reads holds; else an error
    naming the broken files at the end of the pass (without ``planned_count``, fewer batches). The broken files
    (:class:`keras_cnn._images.Skipped`) go to ``report`` (default: a warning naming them).

    The decoding map is followed at once by ``batch`` so that tf.data fuses them (an ``ignore_errors`` between
    them costs ~10% of a pass): a file TensorFlow cannot decode fails its whole batch, which ``ignore_errors``
    drops. A ``scan`` marks the files that came through (:class:`_Tracker`); at the short last batch or the
    markers after it, the lost files are decoded again one by one in Python (:func:`_recover`: the lost batches'
    good files come back, the broken ones are named in a warning) and handed out one batch per marker, sized so
    that the pass keeps its batch count (one batch is then short) when enough files decode. ``scale`` applies
    :func:`_per_batch` in the same step; ``indexed=False`` leaves the indices out of the batches.
    """
    import tensorflow as tf

    files, labels = list(files), _label_array(labels)
    resize = _resize_rule(files, sizes, tuple(image_size))
    shape = (*image_size, channels)
    planned = len(files) // batch_size if drop_remainder else -(-len(files) // batch_size)
    needed = (planned * batch_size if drop_remainder else planned) if planned_count else 0  # images to fill them

    def one(file, label, index):
        return _per_image(file, image_size, channels, resize), label, index

    triples = tf.data.Dataset.from_tensor_slices((tf.constant(files, tf.string), labels,
                                                  np.arange(len(files), dtype="int64")))
    if shuffle_seed is not None:
        triples = triples.shuffle(max(1, len(files)), seed=shuffle_seed, reshuffle_each_iteration=True)
    plain = tf.autograph.experimental.do_not_convert  # no Python control flow on tensors here to convert
    batches = triples.map(plain(one), num_parallel_calls=_decoders()).batch(batch_size).ignore_errors()
    dtype = batches.element_spec[0].dtype
    label_shape, label_type = labels.shape[1:], tf.as_dtype(labels.dtype)
    empty = (tf.zeros((0, *shape), dtype), tf.zeros((0, *label_shape), label_type), tf.zeros((0,), tf.int64))
    track = _Tracker(files, labels, one, where, report, needed, planned, batch_size, drop_remainder)
    specs = ((len(files),), (), (), (), (None, *shape), (None, *label_shape), (None,))
    types = (tf.bool, tf.string, tf.int64, tf.bool, dtype, label_type, tf.int64)

    def step(state, batch):
        # one Python call a batch: cheaper to trace and to start each pass (~30 ms of a 2,000-file pass) than
        # the same logic as graph conditionals, and the decoding it follows runs in parallel meanwhile
        out = [tf.ensure_shape(part, spec) for part, spec in zip(tf.py_function(track, [*state, *batch], types),
                                                                 specs)]
        images, labels, indices = out[4:]
        if scale:
            images = tf.ensure_shape(_per_batch(images, channels), (batch_size if drop_remainder else None, *shape))
        return tuple(out[:4]), (images, labels, indices) if indexed else (images, labels)

    start = (tf.zeros((len(files),), tf.bool), tf.constant(b""), tf.constant(0, tf.int64), tf.constant(False))
    # one marker per batch the hand-outs could owe; the pass is its planned batches (take: no function to start)
    markers = tf.data.Dataset.from_tensors(empty).repeat(planned)
    return batches.concatenate(markers).scan(start, plain(step)).take(planned)


def _label_array(labels):
    """int64 class indices (N,), or float32 multi-hot rows (N, K) for multi-label data
    (:mod:`keras_cnn.multilabel`)."""
    labels = np.asarray(labels)
    return labels.astype("float32") if labels.ndim == 2 else labels.astype("int64")


class _Tracker:
    """:func:`_batches`' bookkeeping, in Python, one call a batch (traced as one op): a full batch passes and
    its files are marked seen. The short last batch or a marker joins what is held back, with the lost files
    decoded again (:func:`_recover`) the first time a loss shows; one batch of that is handed out: full ones
    first, leaving a row for each batch still owed to the pass (nothing owed or left: an empty batch). The
    state ``(seen, held, emitted, recovered)`` travels in the ``scan``, so two iterators never share it; what
    is held back is serialised into one string."""

    def __init__(self, files, labels, one, where, report, needed, planned, batch_size, drop_remainder):
        self.files, self.labels, self.one, self.where, self.report = files, labels, one, where, report
        self.needed, self.planned, self.batch_size, self.drop_remainder = needed, planned, batch_size, drop_remainder

    def __call__(self, seen, held, emitted, recovered, images, labels, indices):
        seen, emitted = np.array(seen), int(emitted.numpy())
        seen[indices.numpy()] = True
        if int(indices.shape[0]) == self.batch_size:  # a full batch of the pass: the common case, no copies
            return seen, held, emitted + 1, recovered, images, labels, indices
        parts = [images.numpy(), labels.numpy(), indices.numpy()]
        if held.numpy():
            with np.load(io.BytesIO(held.numpy()), allow_pickle=False) as stored:
                parts = [np.concatenate([stored[f"arr_{i}"], p]) for i, p in enumerate(parts)]
        recovered = bool(recovered.numpy())
        if not recovered and not seen.all():
            back = _recover(self.files, self.labels, np.flatnonzero(~seen), self.one, self.where, self.report,
                            parts[0].shape[1:], parts[0].dtype, self.needed)
            parts, recovered = [np.concatenate([p, r]) for p, r in zip(parts, back)], True
        rows, wanted, size = len(parts[1]), self.planned - emitted, self.batch_size
        if wanted <= 0 or rows == 0 or (self.drop_remainder and rows < size):
            take = 0
        else:
            take = size if self.drop_remainder else min(size, max(1, rows - (wanted - 1)))
        left = io.BytesIO()
        if rows > take:
            np.savez(left, *(p[take:] for p in parts))
        return (seen, left.getvalue(), emitted + (take > 0), recovered, *(p[:take] for p in parts))


def _recover(files, labels, indices, one, where, report, shape, dtype, needed):
    """The files of ``indices`` (lost with their batch) decoded one by one: ``(pixels, labels, indices)`` of
    those that decode; those that do not go to ``report`` (None: a warning naming them); an error naming them
    when the files left cannot fill the pass's planned batches (``needed`` images), which Keras would otherwise
    meet as a short epoch."""
    import tensorflow as tf

    images, kept, broken = [], [], []
    for index in indices.tolist():
        try:
            images.append(one(tf.constant(files[index]), labels[index], index)[0].numpy())
            kept.append(index)
        except _images._decode_errors() as error:
            broken.append(_images.Skipped(files[index], _images._corrupt(error)))
    named = f"{len(broken)} file(s) TensorFlow could not decode: {_images.name_skipped(broken)}"
    if len(files) - len(broken) < needed:
        raise ValueError(f"{where}: {named}; the {len(files) - len(broken)} left cannot fill the batches planned "
                         f"from the {len(files)} files listed ({needed} images). Remove or repair the files, or "
                         f"list the folder with keras_cnn.data.scan_folder (decode=True skips them up front).")
    if broken and report is not None:
        report(broken)
    elif broken:
        warnings.warn(f"{where}: skipped {named}.", stacklevel=2)
    pixels = np.stack(images) if images else np.zeros((0, *shape), dtype)
    return pixels, labels[kept], np.asarray(kept, dtype="int64")


def _per_image(file, image_size, channels, resize):
    """:func:`keras_cnn._images.decode_image`, less the scaling to [0, 1] for 3 channels (the common case),
    which :func:`_per_batch` does: the same product, one op per batch instead of per image, on batches of
    uint8 pixels (a quarter of the bytes) when nothing is resampled."""
    import tensorflow as tf

    if channels != 3:
        return _images.decode_image(file, channels, image_size, resize=resize)
    image = _images._decoded(file, 3)

    def resampled():
        return tf.image.resize(image, image_size, antialias=True)

    if resize is None:
        same = tf.reduce_all(tf.equal(tf.shape(image)[:2], tf.constant(image_size, tf.int32)))
        image = tf.cond(same, lambda: tf.cast(image, tf.float32), resampled)
    elif resize:
        image = resampled()
    return tf.ensure_shape(image, (*image_size, 3))


def _per_batch(images, channels):
    """The rest of :func:`_per_image`: pixels of 0-255 (uint8 or float32) to float32 in [0, 1] for 3 channels,
    by ``to_model_range``'s factor."""
    import tensorflow as tf

    return tf.cast(images, tf.float32) * (1.0 / 255) if channels == 3 else images


def _resize_rule(files, sizes, image_size):
    """``resize`` for :func:`keras_cnn._images.to_model_range`: False when every header says ``image_size``,
    True when none does, None (per image) otherwise or without sizes. GIFs decide per image: their frames may
    differ from the logical screen size the header gives."""
    if sizes is None or len(sizes) != len(files) or any(f.lower().endswith(".gif") for f in files):
        return None
    same = {tuple(size) == image_size for size in sizes}
    return None if len(same) != 1 else not same.pop()


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
    import tensorflow as tf

    dataset, names = tfds_dataset(name, split, data_dir=data_dir, download=download)
    dataset = (dataset.take(limit) if limit else dataset).map(
        lambda image, label: (_images.to_model_range(image, image_size, channels), tf.cast(label, tf.int64)),
        num_parallel_calls=tf.data.AUTOTUNE)
    return (*_arrays(dataset.batch(256)), names)
