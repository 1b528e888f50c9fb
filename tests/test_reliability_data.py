"""Issue #18 (items 5, 6, 11 and the skipped-files part of 12): image folders, colour conversion, decoding limits.

* folder:PATH sources and ``predict``'s folders list images with ``keras.utils.image_dataset_from_directory``'s
  rules (class folders, recursion, extensions, order), plus ours: hidden files and folders are skipped, and a tree
  with no images, one class or an empty class folder is refused before any work, naming it;
* ``--channels`` 1..4 converts every PNG colour type (L, LA, RGB, RGBA) as PIL's ``Image.convert`` does;
* an image over the pixel limit is refused from its header, never decoded;
* skipped files are named, with their reasons, by the data sources, ``train`` and ``predict``.
"""

import os
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import keras_cnn
from keras_cnn import _images, cli, data
from keras_cnn.app import predict, preprocessing, sources, train

LENET = ["--model", "lenet5", "--option", "pool=max", "--option", "activation=relu"]
MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def png(path, mode="L", size=(8, 6), seed=0):
    """A PNG of random pixels in PIL ``mode`` (``size`` is width, height); returns its path as a string."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shape = (size[1], size[0], len(mode)) if len(mode) > 1 else (size[1], size[0])
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return str(path)


def cli_error(argv):
    """The one line ``keras-cnn ARGV`` exits with (a traceback fails the test)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert isinstance(exit_info.value.code, str) and "\n" not in exit_info.value.code, exit_info.value.code
    return exit_info.value.code


# ---------------------------------------------------------------- item 5: folders read with Keras's rules


@pytest.fixture()
def tree(tmp_path):
    """Two classes; ``cat`` has an image in a sub-folder and an upper-case extension; hidden folders and files
    (a notebook checkpoint folder at both levels, a macOS ``._`` file) and a text file are no images."""
    root = tmp_path / "tree"
    for index, relative in enumerate(["cat/b.png", "cat/A.PNG", "cat/deeper/c.png", "cat/z.jpg", "dog/a.png",
                                      "dog/b.png", "dog/x/e.png", "dog/x/y/d.bmp", ".ipynb_checkpoints/e.png",
                                      "cat/.ipynb_checkpoints/f.png", "dog/._g.png"]):
        png(root / relative, "RGB", seed=index)  # PIL writes the format of the extension: JPEG, BMP
    (root / "dog" / "notes.txt").write_text("not an image")
    return root


def without_hidden(root):
    """The tree with its hidden files and folders removed: what Keras lists then is what we list with them."""
    import shutil

    for hidden in (".ipynb_checkpoints", "cat/.ipynb_checkpoints", "dog/._g.png"):
        shutil.rmtree(root / hidden) if (root / hidden).is_dir() else (root / hidden).unlink()
    return root


def test_folder_classes_and_files_follow_keras_image_dataset_from_directory(tree, tmp_path):
    from keras.src.utils import dataset_utils, image_dataset_utils

    files, labels, names, skipped = data.scan_folder(str(tree))
    expected = ["cat/A.PNG", "cat/b.png", "cat/z.jpg", "cat/deeper/c.png", "dog/a.png", "dog/b.png", "dog/x/e.png",
                "dog/x/y/d.bmp"]
    assert names == ["cat", "dog"] and not skipped
    assert [os.path.relpath(f, tree) for f in files] == expected and labels.tolist() == [0] * 4 + [1] * 4
    keras_files, keras_labels, keras_names = dataset_utils.index_directory(
        str(without_hidden(tree)), "inferred", image_dataset_utils.ALLOWLIST_FORMATS, shuffle=False, verbose=False)
    assert (keras_files, list(keras_labels), keras_names) == (files, labels.tolist(), names)
    assert _images.IMAGE_EXTENSIONS == image_dataset_utils.ALLOWLIST_FORMATS


def test_the_data_sources_and_predict_read_one_listing(tree):
    files = data.scan_folder(str(tree)).files
    source = sources.parse(f"folder:{tree}", val_fraction=0.25, test_fraction=0.25)
    split = sources.load(source, ("all",), size=(8, 8), channels=3)["all"]
    x, y, names = data.load_images(f"folder:{tree}", image_size=(8, 8), channels=3)  # export --representative
    assert split.count == len(x) == len(files) == 8 and split.class_names == tuple(names) == ("cat", "dog")
    np.testing.assert_allclose(np.stack([image for image, _ in split.dataset]), x, atol=1e-6)
    assert predict._files([str(tree)]) == files
    assert predict._files([str(tree / "cat")]) == files[:4]  # recursive, hidden and non-image files left out


@pytest.mark.parametrize("layout, fragments", [
    ({"cat": ["a.png", "b.png"], "dog": ["notes.txt"]}, ["class folder(s) 'dog' hold no images"]),
    ({"cat": ["a.png", "b.png"], "dog": [], "eel": ["x/c.png"]}, ["class folder(s) 'dog' hold no images"]),
    ({"cat": ["a.png", "b.png", "sub/c.png"]}, ["has 1 class sub-folder ('cat'); a classifier needs at least two"]),
    ({"cat": ["notes.txt"], "dog": [".hidden.png"]}, ["holds no images (.bmp, .gif, .jpeg, .jpg, .png"]),
    ({".ipynb_checkpoints": ["a.png"]}, ["has no class sub-folders"]),
])
def test_empty_or_one_class_trees_are_refused_naming_the_folder(tmp_path, layout, fragments):
    root = tmp_path / "images"
    root.mkdir()
    for name, files in layout.items():
        (root / name).mkdir()
        for file in files:
            png(root / name / file) if file.endswith(".png") else (root / name / file).write_text("text")
    for load in (lambda: data.scan_folder(str(root)),
                 lambda: data.load_images(f"folder:{root}", image_size=(8, 8), channels=1),
                 lambda: sources.load(sources.parse(f"folder:{root}"), ("test",), size=(8, 8), channels=1)):
        with pytest.raises(ValueError) as error:
            load()
        assert f"folder {str(root)!r}" in str(error.value) and all(f in str(error.value) for f in fragments)


def test_a_class_with_only_unreadable_files_is_refused_naming_it(tmp_path):
    root = tmp_path / "images"
    png(root / "cat" / "a.png"), png(root / "cat" / "b.png")
    os.makedirs(root / "dog")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.warns(UserWarning, match="broken.png"), \
            pytest.raises(ValueError, match="class folder\\(s\\) 'dog' hold no readable images"):
        data.scan_folder(str(root))


def test_train_refuses_a_one_class_folder_before_any_training_work(tmp_path, monkeypatch):
    def trained(*args, **kwargs):
        raise AssertionError("training work started on a one-class folder")

    monkeypatch.setattr(train, "_build", trained)
    for index in range(6):
        png(tmp_path / "digits" / "seven" / f"{index}.png", size=(32, 32), seed=index)
    message = cli_error(["train", *LENET, "--data", f"folder:{tmp_path / 'digits'}", "--epochs", "1",
                         "--output", str(tmp_path / "out")])
    assert message == (f"keras-cnn train: error: folder {str(tmp_path / 'digits')!r} has 1 class sub-folder "
                       f"('seven'); a classifier needs at least two.")


# ---------------------------------------------------------------- item 6: channels converted as PIL does


@pytest.fixture(scope="module")
def colour_pngs(tmp_path_factory):
    """One PNG of each colour type: L, LA, RGB, RGBA (6 high, 8 wide, random pixels and alpha)."""
    folder = tmp_path_factory.mktemp("colour")
    return {have: png(folder / f"{mode}.png", mode, seed=have) for have, mode in MODES.items()}


@pytest.mark.parametrize("want", MODES)
@pytest.mark.parametrize("have", MODES)
def test_every_png_colour_type_converts_to_every_channel_count_as_pil_does(colour_pngs, have, want):
    file = colour_pngs[have]
    with Image.open(file) as image:
        assert image.mode == MODES[have]
        expected = np.asarray(image.convert(MODES[want]), dtype="float32").reshape(6, 8, want) / 255
    eager = _images.decode_image(file, want).numpy()
    in_graph = next(iter(tf.data.Dataset.from_tensors(file).map(lambda f: _images.decode_image(f, want)))).numpy()
    assert eager.shape == in_graph.shape == (6, 8, want)
    np.testing.assert_array_equal(eager, in_graph)
    # PIL's luma is integer arithmetic (299/587/114), TensorFlow's float (0.2989/0.5870/0.1140): <= 1 level apart
    np.testing.assert_allclose(eager, expected, atol=1.01 / 255)
    if want in (2, 4) and have in (1, 3):
        assert np.all(eager[..., -1] == 1.0)  # an added alpha is opaque
    if want in (2, 4) and have in (2, 4):
        np.testing.assert_array_equal(np.round(eager[..., -1] * 255), expected[..., -1] * 255)  # kept exactly


def test_digits_at_two_or_four_channels_are_grey_with_an_opaque_alpha():
    grey = data.digits(image_size=(8, 8), channels=1)["test"][0]
    for channels, colour in ((2, 1), (4, 3)):
        x = data.digits(image_size=(8, 8), channels=channels)["test"][0]
        np.testing.assert_allclose(x[..., :colour], np.repeat(grey, colour, -1), atol=1e-6)
        assert np.all(x[..., -1] == 1.0)


def test_more_than_four_channels_from_an_image_is_refused(colour_pngs):
    with pytest.raises(ValueError, match="channels: images convert between 1 to 4 channels .* received images of "
                                         "3 channel\\(s\\) for a model input of 5"):
        _images.decode_image(colour_pngs[3], 5)
    with pytest.raises(ValueError, match="model input of 6"):
        preprocessing.create((8, 8, 6), ["a", "b"]).prepare(np.zeros((1, 8, 8, 3), "float32"))


# ---------------------------------------------------------------- item 11: pixel limit read from the header


def test_the_default_limit_is_pils():
    assert _images.MAX_PIXELS == Image.MAX_IMAGE_PIXELS == 89_478_485


def test_a_huge_png_that_is_small_on_disk_is_refused_without_decoding(tmp_path, monkeypatch):
    huge = tmp_path / "huge.png"
    Image.new("L", (20000, 20000)).save(huge)  # 400 million pixels in about 400 KB
    assert huge.stat().st_size < 2_000_000
    decoded = []
    monkeypatch.setattr(_images, "_decoded", lambda file: decoded.append(file))
    record = preprocessing.create((32, 32, 1), ["a", "b"])
    unreadable = []
    assert predict._read([str(huge)], record, unreadable) == (None, [])
    assert unreadable == [(str(huge), "more than 178,956,970 pixels, over the max_pixels limit of 89,478,485")]
    assert not decoded


def test_the_limit_is_configurable_and_names_the_size(tmp_path, recwarn):
    big = png(tmp_path / "big.png", size=(40, 30))
    assert _images.header_problem(big, max_pixels=1_199) == "40x30 = 1,200 pixels, over the max_pixels limit of 1,199"
    assert _images.header_problem(big, max_pixels=1_200) is None
    image, problem = _images.read_image(big, 1, max_pixels=1_000)
    assert image is None and problem.startswith("40x30 = 1,200 pixels")
    with pytest.raises(ValueError, match="max_pixels must be >= 1"):
        _images.header_problem(big, max_pixels=0)
    between = tmp_path / "between.png"  # over PIL's limit, under twice it: PIL warns; our limit speaks instead
    Image.new("L", (9500, 9500)).save(between)
    assert _images.header_problem(str(between)) == "9500x9500 = 90,250,000 pixels, over the max_pixels limit of " \
                                                   "89,478,485"
    assert _images.header_problem(str(between), max_pixels=10**8) is None
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_a_folder_source_skips_and_names_images_over_the_limit(tmp_path, monkeypatch):
    for name in ("cat", "dog"):
        for index in range(5):
            png(tmp_path / "images" / name / f"{index}.png", size=(8, 6), seed=index)
    big = png(tmp_path / "images" / "dog" / "big.png", size=(40, 30))
    with pytest.warns(UserWarning, match=re.escape(f": {big} (40x30 = 1,200 pixels, over the max_pixels limit of "
                                                   f"1,000).")):
        folder = data.scan_folder(str(tmp_path / "images"), max_pixels=1_000)
    assert len(folder.files) == 10 and folder.skipped == [(big, "40x30 = 1,200 pixels, over the max_pixels limit of "
                                                               "1,000")]
    monkeypatch.setattr(_images, "MAX_PIXELS", 1_000)  # the module default, read at call time
    with pytest.warns(UserWarning, match="big.png"):
        split = sources.load(sources.parse(f"folder:{tmp_path / 'images'}"), ("all",), size=(8, 8), channels=1)
    assert split["all"].count == 10 and split["all"].skipped_files[0].file == big


# ---------------------------------------------------------------- item 12: skipped files are named


@pytest.fixture()
def damaged(tmp_path):
    """Three classes of four PNGs, plus a corrupt, a truncated and a text-with-a-PNG-name file."""
    root = tmp_path / "damaged"
    for label in range(3):
        for index in range(4):
            png(root / f"class{label}" / f"{index}.png", size=(32, 32), seed=10 * label + index)
    (root / "class0" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a PNG")
    whole = (root / "class1" / "0.png").read_bytes()
    (root / "class1" / "truncated.png").write_bytes(whole[:len(whole) // 2])
    (root / "class2" / "letter.png").write_text("Dear user, this is text.")
    return root


def test_skipped_files_are_named_with_their_reasons(damaged):
    with pytest.warns(UserWarning) as warned:
        folder = data.scan_folder(str(damaged))
    reasons = dict(folder.skipped)
    assert sorted(os.path.basename(f) for f in reasons) == ["corrupt.png", "letter.png", "truncated.png"]
    for broken in ("class0/corrupt.png", "class2/letter.png"):
        assert reasons[str(damaged / broken)] == "not a BMP, GIF, JPEG or PNG image, or a damaged one: PIL cannot " \
                                                 "identify its header"
    assert reasons[str(damaged / "class1" / "truncated.png")].startswith("corrupt or not a BMP, GIF, JPEG or PNG")
    message = str(warned[0].message)
    assert message.startswith(f"folder {str(damaged)!r}: skipped 3 unreadable or corrupt file(s): ")
    assert all(f"{file} ({reason})" in message for file, reason in folder.skipped)
    many = [_images.Skipped(f"{i}.png", "why") for i in range(8)]
    assert _images.name_skipped(many) == "0.png (why); 1.png (why); 2.png (why); 3.png (why); 4.png (why) and 3 more"


def test_train_names_the_skipped_files_in_its_data_summary(damaged, tmp_path, capsys):
    with pytest.warns(UserWarning, match="skipped 3"):
        train.main([*LENET, "--data", f"folder:{damaged}", "--epochs", "1", "--batch-size", "4", "--image-size",
                    "32", "--val-fraction", "0.25", "--test-fraction", "0.25", "--output", str(tmp_path / "out")])
    header = next(line for line in capsys.readouterr().out.splitlines() if "train/val/test images" in line)
    assert "3 classes, 3 unreadable file(s) skipped: " in header
    assert all(str(damaged / f) in header for f in ("class0/corrupt.png", "class1/truncated.png",
                                                     "class2/letter.png"))


def test_predict_names_each_skipped_file_with_its_reason(damaged, tmp_path, capsys):
    model = keras_cnn.build("lenet5", input_shape=(32, 32, 1), classes=3)
    model.save(tmp_path / "m.keras")
    preprocessing.save(preprocessing.create((32, 32, 1), ["a", "b", "c"]), tmp_path / "m.preprocessing.json")
    Image.new("L", (10000, 10000)).save(damaged / "class0" / "huge.png")
    results = predict.main(["--model", str(tmp_path / "m.keras"), "--top-k", "1", str(damaged)])
    out = capsys.readouterr().out
    assert len(results) == 12
    assert f"skipped 4 unreadable file(s): {damaged / 'class0' / 'corrupt.png'} (not a BMP, GIF, JPEG or PNG " \
           "image, or a damaged one" in out
    assert f"{damaged / 'class0' / 'huge.png'} (10000x10000 = 100,000,000 pixels, over the max_pixels limit" in out
    assert f"{damaged / 'class1' / 'truncated.png'} (corrupt or not a BMP, GIF, JPEG or PNG image: " in out


def test_max_pixels_flag_reaches_predict_and_the_json_names_each_file(tmp_path, capsys):
    model = keras_cnn.build("lenet5", input_shape=(32, 32, 1), classes=3)
    model.save(tmp_path / "m.keras")
    preprocessing.save(preprocessing.create((32, 32, 1), ["a", "b", "c"]), tmp_path / "m.preprocessing.json")
    Image.new("L", (40, 40)).save(tmp_path / "big.png")
    Image.new("L", (20, 20)).save(tmp_path / "small.png")
    report = tmp_path / "p.json"
    results = predict.main(["--model", str(tmp_path / "m.keras"), "--max-pixels", "1000", "--json", str(report),
                            str(tmp_path / "big.png"), str(tmp_path / "small.png")])
    assert list(results) == [str(tmp_path / "small.png")]
    assert "40x40 = 1,600 pixels, over the max_pixels limit of 1,000" in capsys.readouterr().out
    import json

    assert list(json.loads(report.read_text())["unreadable"]) == [str(tmp_path / "big.png")]


@pytest.mark.parametrize("kwargs, error, fragment", [
    ({"limit": 0}, ValueError, "limit"),
    ({"limit": -1}, ValueError, "limit"),
    ({"limit": 2.5}, TypeError, "limit"),
    ({"image_size": (0, 0)}, ValueError, "image_size[0]"),
    ({"image_size": 32}, TypeError, "image_size"),
    ({"channels": 0}, ValueError, "channels"),
    ({"channels": 5}, ValueError, "channels"),
])
@pytest.mark.parametrize("source", ["digits", "folder"])
def test_load_images_checks_its_arguments_before_reading(source, kwargs, error, fragment, tmp_path):
    """#19: limit=0 kept every image and limit=-1 dropped the last; sizes and channels of 0 failed in NumPy/TF."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.new("L", (8, 8)).save(tmp_path / name / "x.png")
    arguments = {"image_size": (8, 8), "channels": 1, **kwargs}
    with pytest.raises(error, match=re.escape(fragment)):
        data.load_images("digits" if source == "digits" else f"folder:{tmp_path}", **arguments)


def test_load_images_limit_keeps_exactly_that_many():
    x, y, _ = data.load_images("digits", image_size=(8, 8), channels=1, limit=1)
    assert x.shape == (1, 8, 8, 1) and y.shape == (1,)
