"""Multi-label data (issue #21): :func:`multilabel_digits`, a built-in set that works offline;
:func:`read_listing`, the parser of a CSV or JSON listing of image files with their label names; and
:func:`listing_dataset`, a listing's images through the folder pipeline.

A multi-label target is a float32 multi-hot row per image: 1 for every class present, 0 otherwise, any number of
ones (none included). Importing this module loads no TensorFlow: :func:`listing_dataset` and
:func:`multilabel_digits` at a size other than 16x16 import it inside the call (as :func:`keras_cnn.data.digits`
does).
"""

import collections
import csv
import io
import json
import numbers
import os
from typing import NamedTuple

import numpy as np

from keras_cnn import _validate

DIGIT_NAMES = [str(d) for d in range(10)]
SPLITS = ("train", "val", "test")
CELLS = 4  # a 2x2 grid of 8x8 cells: the 16x16 canvas
CELL = 8  # scikit-learn's digits are 8x8
LISTING_EXTENSIONS = (".csv", ".json")
LABEL_SEPARATOR = ";"
MISSING_SHOWN = 10  # missing files named in the error; the rest are counted


# -- the built-in multi-label digits ------------------------------------------------------------------------------

def multilabel_digits(image_size=(32, 32), channels=1, split=(0.6, 0.2, 0.2), seed=0, count=3000, max_digits=3):
    """Mosaics of scikit-learn's handwritten digits, labelled with every digit present: a real multi-label set
    that ships with the package.

    Each image is a 2x2 grid of 8x8 cells (a 16x16 canvas resized bilinearly to ``image_size``); 1 to
    ``max_digits`` cells (uniformly many, in random cells) hold a digit, the others are black. The 1,797 source
    digits are split first, stratified by class and fixed by ``seed`` (as :func:`keras_cnn.data.digits` splits
    them), and each split's mosaics draw only from its own digits, so no handwritten digit is seen in two splits.
    Within a split the digits are dealt from reshuffled passes over its pool, so each is used about equally often
    and every class appears once the split has as many digit cells as source digits (it does at the defaults).
    A split holds ``round(count * fraction)`` mosaics.

    Returns ``{"train": (x, y), "val": (x, y), "test": (x, y), "class_names": ["0", ..., "9"]}``: ``x`` float32
    in ``[0, 1]`` of shape ``(n, height, width, channels)`` (grey brought to 3 channels by replication), ``y``
    float32 multi-hot of shape ``(n, 10)`` (a digit placed twice is still one 1). Equal arguments give equal
    arrays.
    """
    height, width, channels, split, seed, count, max_digits = _checked_digits_arguments(
        image_size, channels, split, seed, count, max_digits)
    images, targets = _source_digits()
    plan = _plan(targets, split, seed, count, max_digits)
    out = {}
    for name in SPLITS:
        cells = plan[name]["cells"]
        out[name] = (_to_size(_compose(images, cells), height, width, channels), _multi_hot(targets, cells))
    out["class_names"] = list(DIGIT_NAMES)
    return out


def _checked_digits_arguments(image_size, channels, split, seed, count, max_digits):
    if isinstance(image_size, (str, bytes)) or not hasattr(image_size, "__len__") or len(image_size) != 2:
        raise TypeError(f"image_size must be a (height, width) pair of integers >= 8; received {image_size!r}.")
    height, width = (_validate.check_int(f"image_size[{i}]", s, minimum=8) for i, s in enumerate(image_size))
    channels = _validate.check_choice("channels", _validate.check_int("channels", channels), (1, 3))
    split = _checked_split(split)
    seed = _validate.check_int("seed", seed, minimum=0, maximum=2**32 - 1)  # what numpy and sklearn both take
    count = _validate.check_int("count", count, minimum=10)
    max_digits = _validate.check_int("max_digits", max_digits, minimum=1, maximum=CELLS)
    sizes = [round(count * fraction) for fraction in split]
    if min(sizes) < 1:
        raise ValueError(f"count * split must give every split at least one mosaic; received count={count}, "
                         f"split={split} ({sizes} mosaics).")
    return height, width, channels, split, seed, count, max_digits


def _checked_split(split):
    """Three fractions > 0 summing to 1 within 1e-6, as a tuple of floats."""
    wanted = "three fractions (train, val, test), each > 0, summing to 1"
    if isinstance(split, (str, bytes)) or not hasattr(split, "__len__") or len(split) != 3 or not all(
            isinstance(f, numbers.Real) and not isinstance(f, bool) for f in split):
        raise TypeError(f"split must be {wanted}; received {split!r}.")
    if not all(f > 0 for f in split) or not abs(sum(split) - 1.0) <= 1e-6:  # written so that NaN fails
        raise ValueError(f"split must be {wanted}; received {split!r} (sum {sum(split)!r}).")
    return tuple(float(f) for f in split)


def _source_digits():
    """scikit-learn's digits: ``(images float32 (1797, 8, 8) in [0, 1], targets int64 (1797,))``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype("float32") / 16.0, bunch.target.astype("int64")


def _plan(targets, split, seed, count, max_digits):
    """Where every source digit goes: ``{split: {"pool": source indices, "cells": int64 (n, 4)}}``, a cell
    holding its source digit's index or -1 (black). Depends only on the arguments."""
    pools = _partition(targets, split, seed)
    plan = {}
    for number, name in enumerate(SPLITS):
        # one stream per split, so a split's mosaics do not change when another split's size does
        rng = np.random.default_rng([seed, number])
        n = round(count * split[number])
        filled = rng.integers(1, max_digits + 1, size=n)  # digits per mosaic
        order = np.argsort(rng.random((n, CELLS)), axis=1)  # a random order of the 4 cells per mosaic
        taken = np.arange(CELLS) < filled[:, None]  # the first `filled` cells of that order hold digits
        cells = np.full((n, CELLS), -1, dtype="int64")
        cells[np.nonzero(taken)[0], order[taken]] = _deal(pools[name], int(filled.sum()), rng)
        plan[name] = {"pool": pools[name], "cells": cells}
    return plan


def _partition(targets, split, seed):
    """The source indices of each split, stratified by class: :func:`keras_cnn.data.digits`'s two-step split."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(targets))
    try:
        train, rest = train_test_split(indices, train_size=split[0], stratify=targets, random_state=seed)
        val, test = train_test_split(rest, train_size=split[1] / (split[1] + split[2]), stratify=targets[rest],
                                     random_state=seed)
    except ValueError as error:  # a fraction too small to give each class a source digit
        raise ValueError(f"split must leave every split at least one source digit of each of the 10 classes "
                         f"({len(targets)} digits in all); received {split!r} ({error}).") from None
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def _deal(pool, n, rng):
    """``n`` source indices from reshuffled full passes over ``pool``: even use, and every digit once n >= pool."""
    passes = -(-n // len(pool))
    return np.concatenate([rng.permutation(pool) for _ in range(passes)])[:n]


def _compose(images, cells):
    """The 16x16 canvases: cell ``c`` (0 1 / 2 3) of mosaic ``m`` is ``images[cells[m, c]]``, black where -1."""
    tiles = np.concatenate([np.zeros((1, CELL, CELL), "float32"), images])[cells + 1]  # index 0: the black tile
    grid = tiles.reshape(len(cells), 2, 2, CELL, CELL)  # (n, row, col, y, x)
    return grid.transpose(0, 1, 3, 2, 4).reshape(len(cells), 2 * CELL, 2 * CELL)


def _multi_hot(targets, cells):
    """float32 (n, 10): 1 for every class among a mosaic's digits."""
    y = np.zeros((len(cells), len(DIGIT_NAMES)), "float32")
    rows, slots = np.nonzero(cells >= 0)
    y[rows, targets[cells[rows, slots]]] = 1.0
    return y


def _to_size(canvases, height, width, channels):
    """``(n, height, width, channels)`` images; at 16x16 without TensorFlow (the resize would be the identity)."""
    if (height, width) != (2 * CELL, 2 * CELL):
        from keras_cnn import data

        return data._resize(canvases, height, width, channels)
    # grey -> RGB replicates the grey, keras_cnn._images.match_channels' rule
    return np.repeat(canvases[..., None], channels, axis=-1)


# -- CSV or JSON listings -----------------------------------------------------------------------------------------

class Listing(NamedTuple):
    """A multi-label image listing (:func:`read_listing`)."""

    files: list  # absolute, normalised paths, in the listing's order
    labels: np.ndarray  # float32 multi-hot (len(files), len(class_names))
    class_names: list
    unlabelled: int  # images with an empty label set (allowed)
    per_class: dict  # class name -> images holding it, in class_names order


def read_listing(path, class_names=None):
    """A CSV or JSON listing of image files and their label names -> :class:`Listing`.

    CSV (``.csv``, UTF-8): one image a row, ``path,labels`` with the names separated by ``;``
    (``img/1.png,cat;dog``); an optional first row ``path,labels`` is a header; blank lines are skipped; quote a
    path that holds a comma. JSON (``.json``): either a list ``[{"path": ..., "labels": [...]}, ...]`` or an
    object ``{path: [labels], ...}``. Relative paths are relative to the listing's folder. Label names are
    stripped of surrounding spaces; empty names (``cat;;dog``, a trailing ``;``, ``""``) are ignored, so an empty
    field or list is an image with no labels: allowed, and counted in ``unlabelled``.

    ``class_names`` (unique strings) fixes the classes and their order, and a label outside it is a
    ``ValueError``; by default the classes are the sorted names seen. A wrong extension, an unreadable or malformed
    listing, a row or entry that is not of the form above, a path listed twice, listed files that do not exist
    and a listing without images are ``ValueError`` naming the listing and the line or entry. Images are only
    checked to exist, not decoded.
    """
    path = _validate.check_path("path", path)
    if not path.lower().endswith(LISTING_EXTENSIONS):
        raise ValueError(f"path must be a listing ending in {' or '.join(LISTING_EXTENSIONS)}; received {path!r}.")
    given = None if class_names is None else _checked_class_names(class_names)
    rows = (_csv_rows if path.lower().endswith(".csv") else _json_rows)(path, _read_text(path))
    if not rows:
        raise ValueError(f"listing {path!r} lists no images.")
    folder = os.path.dirname(os.path.abspath(path))
    files = _files(path, folder, rows)
    names = given if given is not None else sorted({name for _, _, labels in rows for name in labels})
    if not names:
        raise ValueError(f"listing {path!r} holds no label names: label some images or give class_names.")
    labels = _encode(path, rows, names)
    return Listing(files, labels, names, int((labels.sum(axis=1) == 0).sum()),
                   {name: int(n) for name, n in zip(names, labels.sum(axis=0))})


def listing_dataset(path, *, image_size, channels, batch_size=32, shuffle_seed=None, class_names=None,
                    drop_remainder=False, max_pixels=None):
    """A batched, prefetched ``tf.data.Dataset`` of ``(float32 images in [0, 1], float32 multi-hot labels)`` of
    the images of a listing (:func:`read_listing`), decoded in parallel by the folder pipeline
    (:func:`keras_cnn.data.decoded`) with its guarantees: files whose header is unreadable or over ``max_pixels``
    are skipped before decoding and named in one warning; a file TensorFlow cannot decode is named when the pass
    reaches it and no other file is lost. Reshuffled every pass with ``shuffle_seed``. The result carries
    ``class_names``, ``skipped_files``, ``unlabelled`` and ``per_class`` (of the listing as read).
    """
    import tensorflow as tf

    from keras_cnn import data

    image_size, channels, _ = data._checked_shape(image_size, channels, None)
    batch_size = _validate.check_int("batch_size", batch_size, minimum=1)
    _validate.check_bool("drop_remainder", drop_remainder)
    listing, usable, sizes = scan_listing(path, class_names=class_names, max_pixels=max_pixels)
    result = data.decoded(usable.files, usable.labels, image_size, channels, sizes=sizes, shuffle_seed=shuffle_seed,
                          batch_size=batch_size, drop_remainder=drop_remainder,
                          where=f"listing {path!r}").prefetch(tf.data.AUTOTUNE)
    result.class_names, result.skipped_files = list(listing.class_names), list(usable.skipped)
    result.unlabelled, result.per_class = listing.unlabelled, dict(listing.per_class)
    return result


LISTING_NAMES = ("labels.csv", "labels.json")  # the labels file of a folder given as a listing


def listing_file(path):
    """The listing a ``listing:PATH`` source names: ``path`` itself, or for a folder the one ``labels.csv`` or
    ``labels.json`` it holds (image paths relative to the folder)."""
    path = _validate.check_path("path", path)
    if not os.path.isdir(path):
        return path
    found = [name for name in LISTING_NAMES if os.path.isfile(os.path.join(path, name))]
    if len(found) != 1:
        what = "neither" if not found else "both"
        raise ValueError(f"folder {path!r} must hold one labels file, {' or '.join(LISTING_NAMES)} (image paths "
                         f"relative to the folder, label names separated by {LABEL_SEPARATOR!r}); it holds {what}.")
    return os.path.join(path, found[0])


def scan_listing(path, *, class_names=None, max_pixels=None, warn=True):
    """``(listing, usable, sizes)``: the :class:`Listing` of ``path`` (a listing or a folder holding one:
    :func:`listing_file`), its files whose headers can be read and are within ``max_pixels`` as a
    :class:`keras_cnn.data.Folder` (multi-hot labels; the others in its ``skipped``, named in one warning unless
    ``warn`` is False), and
    their ``(height, width)``. Nothing is decoded; a listing none of whose images can be read is a ``ValueError``."""
    from keras_cnn import data

    path = listing_file(path)
    listing = read_listing(path, class_names)
    kept, skipped, sizes = data._usable(listing.files, max_pixels, decode=False)
    if skipped and warn:
        data.warn_skipped(path, skipped)
    if not kept:
        raise ValueError(f"listing {path!r}: none of its {len(listing.files)} images can be read.")
    files = [listing.files[i] for i in kept]
    usable = data.Folder(files, listing.labels[kept], list(listing.class_names), list(skipped))
    return listing, usable, [sizes[file] for file in files]


def _checked_class_names(class_names):
    if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__iter__"):
        raise TypeError(f"class_names must be None or a list of label names; received {class_names!r}.")
    names = list(class_names)
    bad = [n for n in names if not isinstance(n, str) or not n.strip() or n != n.strip()]
    if bad or not names:
        raise ValueError(f"class_names must be a non-empty list of non-empty names without surrounding spaces; "
                         f"received {class_names!r}.")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"class_names must be unique; received {class_names!r} ({', '.join(map(repr, twice))} "
                         f"more than once).")
    return names


def _read_text(path):
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: a spreadsheet's byte-order mark
            return f.read()
    except OSError as error:
        raise ValueError(f"listing {path!r} cannot be read: {error}.") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"listing {path!r} is not UTF-8 text: {error}.") from None


def _csv_rows(path, text):
    """``[(where, file, label names)]`` from ``path,name;name`` rows; ``where`` is "line N" for the errors."""
    records = []
    try:
        reader = csv.reader(io.StringIO(text))
        records = [(reader.line_num, record) for record in reader]  # line_num: a quoted field may span lines
    except csv.Error as error:
        raise ValueError(f"listing {path!r} is not valid CSV: {error}.") from None
    out = []
    for number, record in records:
        if not record or all(not field.strip() for field in record):
            continue
        if not out and [field.strip().lower() for field in record] == ["path", "labels"]:
            continue  # the optional header
        if len(record) != 2:
            raise ValueError(f"listing {path!r}, line {number}: expected 'path,labels' (label names separated by "
                             f"{LABEL_SEPARATOR!r}, not ','); received {len(record)} field(s): {record!r}.")
        out.append((f"line {number}", record[0].strip(), _names(record[1].split(LABEL_SEPARATOR))))
    return out


def _json_rows(path, text):
    """``[(where, file, label names)]`` from a list of ``{"path", "labels"}`` objects or a ``{path: labels}``."""
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise ValueError(f"listing {path!r} is not valid JSON: {error}.") from None
    except _DuplicateKeys as error:
        raise ValueError(f"listing {path!r}: JSON object key(s) given twice: {error}.") from None
    if isinstance(document, dict):
        entries = [(f"entry {key!r}", key, value) for key, value in document.items()]
    elif isinstance(document, list):
        entries = [_json_entry(path, number, entry) for number, entry in enumerate(document, start=1)]
    else:
        raise ValueError(f"listing {path!r} must hold a JSON list of {{\"path\": ..., \"labels\": [...]}} objects "
                         f"or an object {{path: [labels]}}; received a {type(document).__name__}.")
    out = []
    for where, file, labels in entries:
        if not isinstance(file, str):
            raise ValueError(f"listing {path!r}, {where}: the path must be a string; received {file!r}.")
        if not isinstance(labels, list) or not all(isinstance(name, str) for name in labels):
            # a bare string would otherwise be read letter by letter
            raise ValueError(f"listing {path!r}, {where}: labels must be a list of names (strings); received "
                             f"{labels!r}.")
        out.append((where, file.strip(), _names(labels)))
    return out


class _DuplicateKeys(Exception):
    pass


def _unique_keys(pairs):
    """A JSON object as a dict, refusing a key given twice (``json`` would silently keep the last, and a
    ``{path: labels}`` listing would lose an image)."""
    counts = collections.Counter(key for key, _ in pairs)
    twice = [key for key, n in counts.items() if n > 1]
    if twice:
        raise _DuplicateKeys(", ".join(map(repr, twice)))
    return dict(pairs)


def _json_entry(path, number, entry):
    if not isinstance(entry, dict) or set(entry) != {"path", "labels"}:
        raise ValueError(f"listing {path!r}, entry {number}: expected an object with exactly the keys 'path' and "
                         f"'labels'; received {entry!r}.")
    return f"entry {number}", entry["path"], entry["labels"]


def _names(raw):
    """Stripped label names, empty ones dropped (``cat;;dog``, a trailing ``;``), in order, once each."""
    return list(dict.fromkeys(name.strip() for name in raw if name.strip()))


def _files(path, folder, rows):
    """The absolute paths; a path listed twice or files that do not exist are errors naming their lines."""
    files, seen, missing = [], {}, []
    for where, file, _ in rows:
        if not file:
            raise ValueError(f"listing {path!r}, {where}: the image path is empty.")
        full = os.path.normpath(os.path.join(folder, os.path.expanduser(file)))
        if full in seen:
            raise ValueError(f"listing {path!r}, {where}: {file!r} is listed twice (first at {seen[full]}).")
        seen[full] = where
        if not os.path.isfile(full):
            missing.append(f"{where}: {full!r}")
        files.append(full)
    if missing:
        more = f" and {len(missing) - MISSING_SHOWN} more" if len(missing) > MISSING_SHOWN else ""
        raise ValueError(f"listing {path!r}: {len(missing)} listed file(s) do not exist: "
                         f"{'; '.join(missing[:MISSING_SHOWN])}{more}.")
    return files


def _encode(path, rows, names):
    """float32 multi-hot (len(rows), len(names)); a name outside ``names`` is an error naming its line."""
    column = {name: i for i, name in enumerate(names)}
    labels = np.zeros((len(rows), len(names)), "float32")
    for row, (where, _, found) in enumerate(rows):
        for name in found:
            if name not in column:
                raise ValueError(f"listing {path!r}, {where}: unknown label {name!r}; class_names allows "
                                 f"{', '.join(map(repr, names))}.")
            labels[row, column[name]] = 1.0
    return labels
