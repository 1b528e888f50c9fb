"""Issue #21's multi-label data: the built-in digit mosaics and the CSV/JSON listing parser."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_cnn import data, multilabel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = {"image_size": (16, 16), "count": 600}  # no resize: no TensorFlow, and the cells are the source pixels


@pytest.fixture(scope="module")
def small():
    return multilabel.multilabel_digits(**SMALL)


def _splits(result):
    return {name: result[name] for name in multilabel.SPLITS}


# -- multilabel_digits --------------------------------------------------------------------------------------------

def test_import_loads_no_tensorflow():
    code = ("import sys, keras_cnn.multilabel\n"
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_shapes_dtypes_ranges_and_sizes(small):
    assert small["class_names"] == [str(d) for d in range(10)]
    sizes = {name: len(y) for name, (_, y) in _splits(small).items()}
    assert sizes == {"train": 360, "val": 120, "test": 120}  # round(600 * fraction)
    for x, y in _splits(small).values():
        assert x.shape == (len(y), 16, 16, 1) and x.dtype == np.float32
        assert y.shape == (len(x), 10) and y.dtype == np.float32
        assert x.min() == 0.0 and x.max() == 1.0  # black cells; the digits' full ink (16/16)
        assert np.unique(y).tolist() == [0.0, 1.0]


def test_resized_rgb_default_size():
    result = multilabel.multilabel_digits(channels=3, count=100)  # the default 32x32, through TensorFlow
    x, y = result["train"]
    assert x.shape == (60, 32, 32, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(x[..., 0], x[..., 2])  # grey replicated
    # the resize keeps the labels and the layout: the mosaic of the same seed at 16x16, upsampled
    same = multilabel.multilabel_digits(image_size=(16, 16), count=100)["train"]
    np.testing.assert_array_equal(y, same[1])
    np.testing.assert_allclose(x, data._resize(same[0][..., 0], 32, 32, 3))


def test_source_digits_are_split_as_digits_splits_them():
    images, targets = multilabel._source_digits()
    plan = multilabel._plan(targets, (0.6, 0.2, 0.2), 0, 100, 3)
    for name, (x, y) in data.digits(image_size=(8, 8)).items():
        pool = plan[name]["pool"]
        np.testing.assert_array_equal(np.bincount(y, minlength=10), np.bincount(targets[pool], minlength=10))
        ink = np.sort(x.reshape(len(x), -1).sum(axis=1))  # the same images, whatever their order
        np.testing.assert_allclose(ink, np.sort(images[pool].reshape(len(pool), -1).sum(axis=1)), atol=1e-4)


def test_labels_are_the_digits_placed(small):
    images, targets = multilabel._source_digits()
    plan = multilabel._plan(targets, (0.6, 0.2, 0.2), 0, SMALL["count"], 3)
    for name, (x, y) in _splits(small).items():
        cells = plan[name]["cells"]
        for row in range(len(x)):
            placed = {int(targets[s]) for s in cells[row] if s >= 0}
            assert set(np.flatnonzero(y[row])) == placed
            for cell, source in enumerate(cells[row]):  # cell c: row c // 2, column c % 2 of the 2x2 grid
                tile = x[row, 8 * (cell // 2):8 * (cell // 2) + 8, 8 * (cell % 2):8 * (cell % 2) + 8, 0]
                np.testing.assert_array_equal(tile, images[source] if source >= 0 else 0.0)


def test_no_source_digit_in_two_splits_and_every_class_everywhere():
    _, targets = multilabel._source_digits()
    plan = multilabel._plan(targets, (0.6, 0.2, 0.2), 0, 3000, 3)
    pools = {name: set(plan[name]["pool"].tolist()) for name in multilabel.SPLITS}
    assert not pools["train"] & pools["val"] and not pools["train"] & pools["test"] and not pools["val"] & pools["test"]
    assert set.union(*pools.values()) == set(range(len(targets)))
    for name in multilabel.SPLITS:
        used = plan[name]["cells"][plan[name]["cells"] >= 0]
        assert set(used.tolist()) == pools[name]  # only its own digits, each of them at least once
        counts = np.bincount(targets[plan[name]["pool"]], minlength=10)
        assert counts.min() >= 0.09 * counts.sum() - 2  # the pools are stratified by class


def test_every_class_in_every_split_and_cardinality_within_bounds(small):
    for max_digits in (1, 2, 4):
        result = multilabel.multilabel_digits(image_size=(16, 16), count=1000, max_digits=max_digits)
        for x, y in _splits(result).values():
            assert y.sum(axis=0).min() > 0  # every class
            cardinality = y.sum(axis=1)
            assert cardinality.min() >= 1 and cardinality.max() <= max_digits
            digits_drawn = (x.reshape(len(x), 2, 8, 2, 8).max(axis=(2, 4)) > 0).sum(axis=(1, 2))
            assert digits_drawn.min() >= 1 and digits_drawn.max() <= max_digits
            assert (cardinality <= digits_drawn).all()
    cardinality = small["train"][1].sum(axis=1)
    assert np.unique(cardinality).tolist() == [1.0, 2.0, 3.0]  # the default's every cardinality occurs


def test_same_seed_same_arrays_other_seed_other_arrays(small):
    again = multilabel.multilabel_digits(**SMALL)
    other = multilabel.multilabel_digits(**SMALL, seed=1)
    for name in multilabel.SPLITS:
        np.testing.assert_array_equal(again[name][0], small[name][0])
        np.testing.assert_array_equal(again[name][1], small[name][1])
        assert not np.array_equal(other[name][0], small[name][0])


@pytest.mark.parametrize("kwargs, error, message", [
    ({"image_size": (7, 16)}, ValueError, r"image_size\[0\] must be >= 8; received 7"),
    ({"image_size": 32}, TypeError, "image_size must be a \\(height, width\\) pair"),
    ({"channels": 2}, ValueError, "channels must be one of 1, 3; received 2"),
    ({"channels": "1"}, TypeError, "channels must be an integer"),
    ({"count": 9}, ValueError, "count must be >= 10; received 9"),
    ({"max_digits": 0}, ValueError, "max_digits must be >= 1; received 0"),
    ({"max_digits": 5}, ValueError, "max_digits must be <= 4; received 5"),
    ({"split": (0.5, 0.5, 0.5)}, ValueError, "split must be three fractions .* summing to 1; received"),
    ({"split": (1.0, 0.0, 0.0)}, ValueError, "each > 0"),
    ({"split": (0.6, 0.4)}, TypeError, "split must be three fractions"),
    ({"split": (0.6, 0.2, float("nan"))}, ValueError, "split must be three fractions"),
    ({"split": (0.99, 0.005, 0.005), "count": 1000}, ValueError, "source digit of each of the 10 classes"),
    ({"split": (0.9, 0.05, 0.05), "count": 10}, ValueError, "every split at least one mosaic"),
    ({"seed": -1}, ValueError, "seed must be >= 0"),
])
def test_bad_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        multilabel.multilabel_digits(**kwargs)


# -- read_listing -------------------------------------------------------------------------------------------------

def _images(folder, *names):
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not decoded here")


def test_csv_with_header_relative_and_absolute_paths(tmp_path):
    _images(tmp_path, "img/a.png", "img/b.png", "c.png")
    (tmp_path / "list.csv").write_text(
        f"path,labels\nimg/a.png,dog;cat\n\n img/b.png , cat ;; \n{tmp_path / 'c.png'},\n")
    listing = multilabel.read_listing(tmp_path / "list.csv")
    assert listing.files == [str(tmp_path / "img/a.png"), str(tmp_path / "img/b.png"), str(tmp_path / "c.png")]
    assert listing.class_names == ["cat", "dog"]  # sorted; " cat " stripped; the empty names ignored
    np.testing.assert_array_equal(listing.labels, [[1, 1], [1, 0], [0, 0]])
    assert listing.labels.dtype == np.float32
    assert listing.unlabelled == 1 and listing.per_class == {"cat": 2, "dog": 1}


def test_csv_without_header_and_listing_outside_the_images(tmp_path):
    _images(tmp_path, "data/x.png", "data/y.png")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "l.csv").write_text("../data/x.png,a\n\"../data/y.png\",b;a\n")
    listing = multilabel.read_listing(str(tmp_path / "lists" / "l.csv"))
    assert listing.files == [str(tmp_path / "data/x.png"), str(tmp_path / "data/y.png")]
    np.testing.assert_array_equal(listing.labels, [[1, 0], [1, 1]])


def test_json_list_and_object_forms_agree(tmp_path):
    _images(tmp_path, "a.png", "b.png", "c.png")
    entries = [{"path": "a.png", "labels": ["x", " y"]}, {"path": "b.png", "labels": []},
               {"path": "c.png", "labels": ["y", ""]}]
    (tmp_path / "list.json").write_text(json.dumps(entries))
    (tmp_path / "dict.json").write_text(json.dumps({e["path"]: e["labels"] for e in entries}))
    one, other = (multilabel.read_listing(tmp_path / name) for name in ("list.json", "dict.json"))
    assert one.files == other.files == [str(tmp_path / n) for n in ("a.png", "b.png", "c.png")]
    np.testing.assert_array_equal(one.labels, [[1, 1], [0, 0], [0, 1]])
    np.testing.assert_array_equal(one.labels, other.labels)
    assert one.unlabelled == other.unlabelled == 1 and one.per_class == {"x": 1, "y": 2}


def test_given_class_names_fix_the_columns_and_refuse_unknown_labels(tmp_path):
    _images(tmp_path, "a.png", "b.png")
    (tmp_path / "l.csv").write_text("a.png,dog\nb.png,\n")
    listing = multilabel.read_listing(tmp_path / "l.csv", class_names=["dog", "cat", "bird"])
    assert listing.class_names == ["dog", "cat", "bird"]
    np.testing.assert_array_equal(listing.labels, [[1, 0, 0], [0, 0, 0]])
    assert listing.per_class == {"dog": 1, "cat": 0, "bird": 0} and listing.unlabelled == 1
    (tmp_path / "u.csv").write_text("a.png,dog\nb.png,cat;horse\n")
    with pytest.raises(ValueError, match=r"u.csv'?, line 2: unknown label 'horse'; class_names allows 'cat', 'dog'"):
        multilabel.read_listing(tmp_path / "u.csv", class_names=["cat", "dog"])
    (tmp_path / "u.json").write_text(json.dumps([{"path": "a.png", "labels": ["emu"]}]))
    with pytest.raises(ValueError, match="entry 1: unknown label 'emu'"):
        multilabel.read_listing(tmp_path / "u.json", class_names=["cat"])
    with pytest.raises(ValueError, match="class_names must be unique"):
        multilabel.read_listing(tmp_path / "l.csv", class_names=["dog", "dog"])
    with pytest.raises(TypeError, match="class_names must be None or a list"):
        multilabel.read_listing(tmp_path / "l.csv", class_names="dog")


def test_duplicate_and_missing_files_are_named(tmp_path):
    _images(tmp_path, "a.png")
    (tmp_path / "dup.csv").write_text("a.png,x\n./a.png,y\n")
    with pytest.raises(ValueError, match=r"line 2: './a.png' is listed twice \(first at line 1\)"):
        multilabel.read_listing(tmp_path / "dup.csv")
    (tmp_path / "dup.json").write_text('{"a.png": ["x"], "a.png": ["y"]}')
    with pytest.raises(ValueError, match="key\\(s\\) given twice: 'a.png'"):
        multilabel.read_listing(tmp_path / "dup.json")
    (tmp_path / "gone.csv").write_text("a.png,x\nb.png,x\nsub/c.png,\n")
    with pytest.raises(ValueError, match="2 listed file\\(s\\) do not exist: line 2: .*b.png.*; line 3: .*c.png"):
        multilabel.read_listing(tmp_path / "gone.csv")


@pytest.mark.parametrize("name, text, message", [
    ("l.txt", "a.png,x\n", "path must be a listing ending in .csv or .json; received"),
    ("l.csv", "", "lists no images"),
    ("l.csv", "path,labels\n\n", "lists no images"),
    ("l.csv", "a.png,x,y\n", "line 1: expected 'path,labels' .*not ','.*3 field"),
    ("l.csv", "a.png\n", "line 1: expected 'path,labels'"),
    ("l.csv", ",x\n", "line 1: the image path is empty"),
    ("l.csv", "a.png,\n", "holds no label names"),
    ("l.json", "[{\"path\": \"a.png\", \"labels\": ", "is not valid JSON"),
    ("l.json", "[{\"path\": \"a.png\", \"label\": [\"x\"]}]", "entry 1: expected an object with exactly the keys"),
    ("l.json", "{\"a.png\": \"x;y\"}", "entry 'a.png': labels must be a list of names"),
    ("l.json", "\"a.png\"", "must hold a JSON list"),
])
def test_malformed_listings_are_refused(tmp_path, name, text, message):
    _images(tmp_path, "a.png")
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=message):
        multilabel.read_listing(tmp_path / name)


def test_unreadable_listing(tmp_path):
    with pytest.raises(ValueError, match="absent.csv' cannot be read: .*No such file"):
        multilabel.read_listing(tmp_path / "absent.csv")
    (tmp_path / "latin.csv").write_bytes("caf\xe9.png,x\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin.csv' is not UTF-8 text"):
        multilabel.read_listing(tmp_path / "latin.csv")
    with pytest.raises(TypeError, match="path must be a path"):
        multilabel.read_listing(3)


# -- listing_dataset: a listing's images through the folder pipeline ---------------------------------------------

def _grey_png(path, seed):
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16), dtype=np.uint8)
    Image.fromarray(pixels, "L").save(path)
    return pixels


def test_listing_dataset_decodes_every_good_image_with_its_labels_and_names_the_broken_one(tmp_path):
    """Seven good PNGs and a truncated one (its header reads, its pixels do not), batches of 3: the pass returns
    the seven with their multi-hot rows, in the planned 3 batches, and names the broken file."""
    names = ["cat", "dog", "fox"]
    rows, expected = ["path,labels"], {}
    for index in range(7):
        labels = [n for k, n in enumerate(names) if (index >> k) & 1]  # 0..6: every subset but all three
        pixels = _grey_png(tmp_path / "img" / f"{index}.png", seed=index)
        rows.append(f"img/{index}.png,{';'.join(labels)}")
        expected[pixels.tobytes()] = [float(n in labels) for n in names]
    whole = (tmp_path / "img" / "6.png").read_bytes()
    (tmp_path / "img" / "broken.png").write_bytes(whole[:len(whole) // 2])
    rows.append("img/broken.png,cat")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")

    with pytest.warns(UserWarning, match="broken.png"):
        dataset = multilabel.listing_dataset(str(tmp_path / "labels.csv"), image_size=(16, 16), channels=1,
                                             batch_size=3, shuffle_seed=1)
        batches = list(dataset)
    assert len(batches) == 3 == int(dataset.cardinality())
    images = np.concatenate([b[0].numpy() for b in batches])
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert images.shape == (7, 16, 16, 1) and labels.shape == (7, 3) and labels.dtype == np.float32
    got = {np.round(image[..., 0] * 255).astype(np.uint8).tobytes(): row.tolist() for image, row in zip(images, labels)}
    assert got == expected  # each image once, with its own labels
    assert dataset.class_names == names and dataset.unlabelled == 1  # img/0.png has no labels
    assert dataset.per_class == {"cat": 4, "dog": 3, "fox": 3}  # broken.png counted as listed


def test_listing_dataset_refuses_a_listing_with_no_readable_image(tmp_path):
    (tmp_path / "a.png").write_text("not an image")
    (tmp_path / "labels.csv").write_text("a.png,cat\n")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        with pytest.raises(ValueError, match="none of its 1 images can be read"):
            multilabel.listing_dataset(str(tmp_path / "labels.csv"), image_size=(16, 16), channels=1)
