"""Issue #19 (Data): ``keras_cnn.data.dataset(...)``, the parallel ``tf.data`` folder path and its checks.

* ``dataset()`` gives what ``load_images`` gives (shapes, dtypes, [0, 1] range, labels, class names) for
  folders, digits and tfds, batched, shuffled reproducibly by ``seed``, with the same argument checks;
* the faster decoding (3 channels by the decoder, resize before the channel rule, no resample at the stored
  size) gives the pixels of the old order;
* a file TensorFlow cannot decode is skipped and named, by ``dataset()``, ``load_images`` and the apps' sources.
"""

import os
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_cnn import _images, data
from keras_cnn.app import augment, sources

MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def png(path, mode="RGB", size=(8, 6), seed=0, **save):
    """An image of random pixels in PIL ``mode`` (``size`` is width, height), in the format of the extension."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shape = (size[1], size[0], len(mode)) if len(mode) > 1 else (size[1], size[0])
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8), mode).save(path, **save)
    return str(path)


@pytest.fixture()
def mixed(tmp_path):
    """Three classes of five images each: every PNG colour type, a JPEG and a BMP, sizes at and off 16x16."""
    root = tmp_path / "mixed"
    for label in range(3):
        for index in range(5):
            mode = MODES[1 + (label + index) % 4]
            size = (16, 16) if index % 2 else (20 + index, 12 + label)
            png(root / f"c{label}" / f"{index}.png", mode, size, seed=10 * label + index)
    png(root / "c0" / "x.jpg", "RGB", (30, 18), seed=99)
    png(root / "c1" / "y.bmp", "RGB", (16, 16), seed=98)
    return root


@pytest.fixture()
def same_size(tmp_path):
    """Two classes of six RGB PNGs at 16x16 (the resize is skipped for every image)."""
    root = tmp_path / "same"
    for label in range(2):
        for index in range(6):
            png(root / f"k{label}" / f"{index}.png", "RGB", (16, 16), seed=label * 10 + index)
    return root


def batches(dataset):
    """``(x, y)`` of a batched dataset, concatenated."""
    parts = [(x.numpy(), y.numpy()) for x, y in dataset]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_dataset_gives_what_load_images_gives_on_a_folder(mixed, channels):
    x, y, names = data.load_images(f"folder:{mixed}", image_size=(16, 16), channels=channels)
    result = data.dataset(f"folder:{mixed}", split="all", image_size=(16, 16), channels=channels, batch_size=4)
    assert result.class_names == names == ["c0", "c1", "c2"]
    assert result.element_spec[0].shape.as_list() == [None, 16, 16, channels]
    assert result.element_spec[0].dtype == tf.float32 and result.element_spec[1].dtype == tf.int64
    got_x, got_y = batches(result)
    assert got_x.shape == x.shape == (17, 16, 16, channels) and got_x.dtype == x.dtype == np.float32
    np.testing.assert_array_equal(got_y, y)
    np.testing.assert_allclose(got_x, x, atol=1e-6)
    assert 0.0 <= got_x.min() and got_x.max() <= 1.0
    predict = [_images.decode_image(file, channels, (16, 16)).numpy() for file in data.scan_folder(str(mixed)).files]
    np.testing.assert_array_equal(got_x, np.stack(predict))  # predict's decoder: the very same pixels
    split = sources.load(sources.parse(f"folder:{mixed}"), ("all",), size=(16, 16), channels=channels)["all"]
    app_x, app_y = batches(split.dataset.batch(5))  # the apps' path: the same pixels, in memory
    np.testing.assert_allclose(app_x, x, atol=1e-6)
    np.testing.assert_array_equal(app_y, y)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_the_new_decoding_order_gives_the_old_pixels(mixed, channels):
    """Old order: file channels -> [0, 1] -> channel rule -> antialiased resize, every image resampled."""
    for file in data.scan_folder(str(mixed)).files:
        raw = _images._decoded(file)
        old = tf.image.resize(_images.match_channels(tf.image.convert_image_dtype(raw, tf.float32), channels),
                              (16, 16), antialias=True)
        new = _images.decode_image(file, channels, (16, 16))
        np.testing.assert_allclose(new.numpy(), old.numpy(), atol=2e-6, err_msg=file)
        for resize in (True, False) if raw.shape[:2] == (16, 16) else (True,):
            np.testing.assert_allclose(_images.decode_image(file, channels, (16, 16), resize=resize).numpy(),
                                       old.numpy(), atol=2e-6, err_msg=file)


@pytest.mark.parametrize("name, mode, save", [
    ("l.png", "L", {}), ("la.png", "LA", {}), ("rgb.png", "RGB", {}), ("rgba.png", "RGBA", {}),
    ("p.png", "P", {}), ("pt.png", "P", {"transparency": 0}), ("l.jpg", "L", {}), ("rgb.jpg", "RGB", {}),
    ("rgb.gif", "RGB", {}), ("l.bmp", "L", {}), ("rgb.bmp", "RGB", {}), ("one.png", "1", {}),
])
def test_the_decoders_three_channel_conversion_is_the_channel_rule(tmp_path, name, mode, save):
    source = "RGB" if mode in ("P", "1") else mode
    file = png(tmp_path / name, source, (9, 7))
    if mode != source:
        Image.open(file).convert(mode).save(file, **save)
    rule = _images.match_channels(tf.image.convert_image_dtype(_images._decoded(file), tf.float32), 3)
    np.testing.assert_array_equal(_images.decode_image(file, 3).numpy(), rule.numpy())


def test_png_sizes_from_the_first_chunk_equal_pil(mixed, tmp_path):
    for file in data.scan_folder(str(mixed)).files:
        expected = Image.open(file).size[::-1] if file.endswith(".png") else None
        assert _images._png_size(file) == expected
    (tmp_path / "short.png").write_bytes(_images.PNG_SIGNATURE + b"\0\0\0\rIHDR")
    assert _images._png_size(str(tmp_path / "short.png")) is None


def test_digits_and_the_splits_follow_load_images_and_the_apps(mixed):
    x, y, names = data.load_images("digits", image_size=(8, 8), channels=1, split="test")
    result = data.dataset("digits", split="test", image_size=(8, 8), channels=1, batch_size=64)
    assert result.class_names == names
    got_x, got_y = batches(result)
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    counts = {split: len(batches(data.dataset(f"folder:{mixed}", split=split, image_size=(8, 8), channels=3))[1])
              for split in ("train", "val", "test", "all")}
    app = sources.load(sources.parse(f"folder:{mixed}"), ("train", "val", "test"), size=(8, 8), channels=3)
    assert counts == {"train": app["train"].count, "val": app["val"].count, "test": app["test"].count, "all": 17}
    assert sum(counts[s] for s in ("train", "val", "test")) == 17


def test_shuffle_is_reproducible_from_the_seed_and_reshuffles_every_pass(same_size):
    def labels_and_pixels(seed):
        result = data.dataset(f"folder:{same_size}", split="all", image_size=(16, 16), channels=3, batch_size=12,
                              shuffle=True, seed=seed)
        return [batches(result) for _ in range(2)]  # two passes

    first, again, other = labels_and_pixels(1), labels_and_pixels(1), labels_and_pixels(2)
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(first[0][0], first[1][0])  # the second pass has another order
    assert not np.array_equal(first[0][0], other[0][0])
    unshuffled = batches(data.dataset(f"folder:{same_size}", split="all", image_size=(16, 16), channels=3))
    assert sorted(first[0][1].tolist()) == sorted(unshuffled[1].tolist()) == [0] * 6 + [1] * 6
    np.testing.assert_allclose(np.sort(first[0][0].reshape(12, -1), axis=0),
                               np.sort(unshuffled[0].reshape(12, -1), axis=0))
    assert unshuffled[1].tolist() == [0] * 6 + [1] * 6  # split "all" without shuffle: the listing's order


def test_batches_and_drop_remainder(same_size):
    kept = data.dataset(f"folder:{same_size}", split="all", image_size=(16, 16), channels=3, batch_size=5)
    assert [int(x.shape[0]) for x, _ in kept] == [5, 5, 2] and int(kept.cardinality()) == 3
    dropped = data.dataset(f"folder:{same_size}", split="all", image_size=(16, 16), channels=3, batch_size=5,
                           drop_remainder=True)
    assert [int(x.shape[0]) for x, _ in dropped] == [5, 5] and int(dropped.cardinality()) == 2
    assert dropped.element_spec[0].shape.as_list() == [5, 16, 16, 3]
    limited = data.dataset(f"folder:{same_size}", split="all", image_size=(16, 16), channels=3, limit=7)
    assert batches(limited)[1].tolist() == [0] * 6 + [1]  # the first 7 of the listing


def test_augmentation_recipes_by_name_and_object(same_size):
    plain = batches(data.dataset(f"folder:{same_size}", split="all", image_size=(16, 16), channels=3))[0]
    for recipe in ("flip", "shift", "flip+shift", augment.Recipe(flip=True)):
        x, y = batches(data.dataset(f"folder:{same_size}", split="all", image_size=(16, 16), channels=3,
                                    shuffle=False, augment=recipe, seed=3))
        assert x.shape == plain.shape and y.tolist() == [0] * 6 + [1] * 6 and not np.array_equal(x, plain)
    flipped = batches(data.dataset(f"folder:{same_size}", split="all", image_size=(16, 16), channels=3,
                                   augment="flip", seed=3))[0]
    assert all(np.array_equal(f, p) or np.array_equal(f, p[:, ::-1]) for f, p in zip(flipped, plain))


@pytest.mark.parametrize("kwargs, error, fragment", [
    ({"limit": 0}, ValueError, "limit"),
    ({"limit": -1}, ValueError, "limit"),
    ({"image_size": (0, 0)}, ValueError, "image_size[0]"),
    ({"image_size": 32}, TypeError, "image_size"),
    ({"channels": 0}, ValueError, "channels"),
    ({"channels": 5}, ValueError, "channels"),
    ({"split": "training"}, ValueError, "split must be one of 'train', 'val', 'test', 'all'; received 'training'"),
    ({"augment": "mixup"}, ValueError, "augment must be one of 'flip', 'shift', 'flip+shift'; received 'mixup'"),
    ({"augment": 1}, TypeError, "augment must be None"),
    ({"augment": augment.Recipe(crop=True)}, ValueError, "augment: crops"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"shuffle": "yes"}, TypeError, "shuffle"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, ValueError, "val_fraction + test_fraction"),
    ({"source": "folders:x"}, ValueError,
     "source must be 'digits', 'folder:PATH', 'tfds:NAME[:SPLIT]', or multi-label 'multilabel-digits' or "
     "'listing:PATH'"),
])
@pytest.mark.parametrize("source", ["digits", "folder"])
def test_dataset_checks_its_arguments_before_reading(same_size, monkeypatch, source, kwargs, error, fragment):
    monkeypatch.setattr(data, "_scan", lambda *a, **k: pytest.fail("read the folder before checking"))
    monkeypatch.setattr(data, "digits", lambda *a, **k: pytest.fail("read digits before checking"))
    arguments = {"source": "digits" if source == "digits" else f"folder:{same_size}", "image_size": (8, 8),
                 "channels": 1, **kwargs}
    with pytest.raises(error, match=re.escape(fragment)):
        data.dataset(**arguments)


@pytest.fixture()
def damaged(tmp_path):
    """Three classes of four PNGs, plus a corrupt, a truncated and a text-with-a-PNG-name file."""
    root = tmp_path / "damaged"
    for label in range(3):
        for index in range(4):
            png(root / f"class{label}" / f"{index}.png", "L", (16, 16), seed=10 * label + index)
    (root / "class0" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG")
    whole = (root / "class1" / "0.png").read_bytes()
    (root / "class1" / "truncated.png").write_bytes(whole[:len(whole) // 2])
    (root / "class2" / "letter.png").write_text("Dear user, this is text.")
    return root


def test_dataset_skips_and_names_unreadable_files(damaged):
    with pytest.warns(UserWarning, match="skipped 2 unreadable or corrupt file") as listed:
        result = data.dataset(f"folder:{damaged}", split="all", image_size=(16, 16), channels=1, batch_size=5)
    assert all(str(damaged / f) in str(listed[0].message) for f in ("class0/corrupt.png", "class2/letter.png"))
    assert sorted(os.path.basename(item.file) for item in result.skipped_files) == ["corrupt.png", "letter.png"]
    with pytest.warns(UserWarning, match="skipped 1 file\\(s\\) TensorFlow could not decode") as decoded:
        x, y = batches(result)  # the pass that reaches the truncated file names it, and goes on
    message = str(decoded[0].message)
    assert f"{damaged / 'class1' / 'truncated.png'} (corrupt or not a BMP, GIF, JPEG or PNG image" in message
    # the batch that held the truncated file comes back, less that file, at the end of the pass
    assert x.shape == (12, 16, 16, 1) and y.tolist() == [0] * 4 + [1] + [2] * 3 + [1] * 3 + [2]
    with pytest.warns(UserWarning, match="truncated.png"):
        expected_x, expected_y, _ = data.load_images(f"folder:{damaged}", image_size=(16, 16), channels=1)
    assert expected_y.tolist() == [0] * 4 + [1] * 4 + [2] * 4  # load_images keeps the files' order
    assert sorted((int(label), image.tobytes()) for image, label in zip(x, y)) == \
        sorted((int(label), image.tobytes()) for image, label in zip(expected_x, expected_y))
    with pytest.warns(UserWarning, match="truncated.png"):
        assert len(batches(result)[1]) == 12  # every pass that loses it says so


def test_load_images_and_the_apps_name_the_undecodable_file_before_training(damaged):
    with pytest.warns(UserWarning, match="truncated.png"):
        x, y, _ = data.load_images(f"folder:{damaged}", image_size=(16, 16), channels=1)
    assert x.shape == (12, 16, 16, 1)
    with pytest.warns(UserWarning, match="skipped 3 unreadable or corrupt file") as warned:
        splits = sources.load(sources.parse(f"folder:{damaged}", val_fraction=0.25, test_fraction=0.25),
                              ("train", "val", "test"), size=(16, 16), channels=1)
    assert len(warned) == 1 and all(name in str(warned[0].message) for name in ("corrupt", "letter", "truncated"))
    assert sum(split.count for split in splits.values()) == 12 and len(splits["train"].skipped_files) == 3
    assert all(len(list(split.dataset)) == split.count and split.in_memory for split in splits.values())
    limited = sources.load(sources.parse(f"folder:{damaged}"), ("all",), size=(16, 16), channels=1, limit=5)
    assert limited["all"].count == 5 and len(list(limited["all"].dataset)) == 5


def test_a_class_left_without_decodable_images_is_refused(tmp_path):
    for index in range(3):
        png(tmp_path / "images" / "cat" / f"{index}.png", "L", (8, 8), seed=index)
    whole = (tmp_path / "images" / "cat" / "0.png").read_bytes()
    (tmp_path / "images" / "dog").mkdir()
    (tmp_path / "images" / "dog" / "cut.png").write_bytes(whole[:len(whole) // 2])
    with pytest.warns(UserWarning, match="cut.png"), \
            pytest.raises(ValueError, match="class folder\\(s\\) 'dog' hold no readable images"):
        sources.load(sources.parse(f"folder:{tmp_path / 'images'}"), ("all",), size=(8, 8), channels=1)


def test_tfds_through_tf_data_offline_with_mock_data():
    """tensorflow-datasets' own mock (no download): random examples with the dataset's features."""
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=12):
        result = data.dataset("tfds:mnist", split="test", image_size=(16, 16), channels=3, batch_size=5)
        assert result.class_names == [str(i) for i in range(10)]
        x, y = batches(result)
        expected_x, expected_y, _ = data.load_images("tfds:mnist", image_size=(16, 16), channels=3, split="test")
    assert x.shape == (12, 16, 16, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(x, expected_x, atol=1e-6)
    np.testing.assert_array_equal(y, expected_y)
    assert y.dtype == np.int64 and set(y.tolist()) <= set(range(10))


def test_model_fit_reads_the_batch_count_and_never_runs_out(tmp_path, recwarn):
    """The batches have a known cardinality (ignore_errors alone would leave it unknown and Keras's fit would warn
    "Your input ran out of data" after the first epoch), with and without per-image augmentation."""
    import keras

    import keras_cnn

    for label in range(2):
        for index in range(5):
            png(tmp_path / "f" / f"k{label}" / f"{index}.png", "L", (32, 32), seed=label * 10 + index)
    model = keras_cnn.build("lenet5", input_shape=(32, 32, 1), classes=2)
    model.compile("sgd", "sparse_categorical_crossentropy")
    for recipe in (None, "flip"):
        train = data.dataset(f"folder:{tmp_path / 'f'}", split="all", image_size=(32, 32), channels=1,
                             batch_size=4, augment=recipe)
        assert int(train.cardinality()) == 3
        history = model.fit(train, epochs=2, verbose=0)
        assert len(history.history["loss"]) == 2
    assert not [w for w in recwarn if "ran out of data" in str(w.message)]


def test_a_clean_folder_never_warns_however_the_batches_interleave(tmp_path, recwarn):
    """The per-batch counts run in several tf.data threads: a lost update would report files as undecodable."""
    for label in range(2):
        for index in range(60):
            png(tmp_path / "f" / f"k{label}" / f"{index}.png", "RGB", (8, 8), seed=label * 100 + index)
    result = data.dataset(f"folder:{tmp_path / 'f'}", split="all", image_size=(8, 8), channels=3, batch_size=2,
                          shuffle=True)
    assert all(len(batches(result)[1]) == 120 for _ in range(6))
    assert not [w for w in recwarn if "could not decode" in str(w.message)]


@pytest.mark.parametrize("drop_remainder", [False, True])
def test_a_shuffled_pass_returns_every_good_file_once_beside_a_broken_one(tmp_path, drop_remainder):
    """A broken file fails its whole (fused) decode-and-batch step; its batch-mates come back at the end of the
    pass, which keeps its batch count (one batch is then short), on every pass and in every order."""
    for label in range(2):
        for index in range(10):
            png(tmp_path / "f" / f"k{label}" / f"{index}.png", "RGB", (8, 8), seed=label * 100 + index)
    whole = (tmp_path / "f" / "k0" / "0.png").read_bytes()
    (tmp_path / "f" / "k0" / "cut.png").write_bytes(whole[:len(whole) // 2])
    result = data.dataset(f"folder:{tmp_path / 'f'}", split="all", image_size=(8, 8), channels=3, batch_size=4,
                          shuffle=True, drop_remainder=drop_remainder)
    planned = 5 if drop_remainder else 6  # 21 files listed: 21 // 4 or -(-21 // 4) batches, which Keras reads
    assert int(result.cardinality()) == planned
    orders = set()
    for _ in range(3):
        with pytest.warns(UserWarning, match="cut.png"):
            sizes, pixels = zip(*[(len(y), x.numpy()) for x, y in result])
        assert len(sizes) == planned and sum(sizes) == 20 and max(sizes) == 4 and min(sizes) >= 1
        assert not drop_remainder or set(sizes) == {4}
        images = np.concatenate(pixels)
        assert len({image.tobytes() for image in images}) == 20  # each good file once
        orders.add(images.tobytes())
    assert len(orders) > 1  # reshuffled every pass


def test_too_few_decodable_files_for_the_planned_batches_is_an_error_naming_them(tmp_path):
    """drop_remainder=True plans len(files) // batch_size full batches from the listing; broken files that leave
    too few images end the pass with an error naming them (Keras would meet a short epoch); load_images and the
    in-memory path take what decodes."""
    import tensorflow as tf

    for index in range(6):
        png(tmp_path / "f" / f"k{index % 2}" / f"{index}.png", "RGB", (8, 8), seed=index)
    whole = (tmp_path / "f" / "k0" / "0.png").read_bytes()
    for index in range(2):
        (tmp_path / "f" / f"k{index}" / f"cut{index}.png").write_bytes(whole[:len(whole) // 2])
    result = data.dataset(f"folder:{tmp_path / 'f'}", split="all", image_size=(8, 8), channels=3, batch_size=4,
                          drop_remainder=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="cut0.png.*cut1.png.*the 6 left cannot fill"):
        list(result)
    with pytest.warns(UserWarning, match="skipped 2 file"):
        x, y, _ = data.load_images(f"folder:{tmp_path / 'f'}", image_size=(8, 8), channels=3)
    assert x.shape == (6, 8, 8, 3)
