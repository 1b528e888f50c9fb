"""The SavedModel's raw-input signatures (TF Serving): uint8 pixels and encoded image bytes, preprocessed inside
the graph, give what ``keras-cnn predict`` gives on the same file; every variable is stored once."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_cnn
from keras_cnn import data, export
from keras_cnn.app import preprocessing

SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")


def digit_pixels(index, size, channels):
    """A real digit as 8-bit pixels of ``size`` and ``channels`` (what a user's PNG holds)."""
    x = data.digits(image_size=size, channels=channels)["test"][0][index]
    return np.round(x * 255).astype("uint8")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """LeNet-5 (briefly trained) saved as ``keras-cnn train`` saves it, with a record that resizes to 36x36,
    crops 32x32 and normalises with a mean and std, exported with that record; and an RGB PNG of another size."""
    folder = tmp_path_factory.mktemp("serving")
    keras.utils.set_random_seed(0)
    model = keras_cnn.build("lenet5", input_shape=(32, 32, 1), classes=10)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*data.digits(image_size=(32, 32))["train"], epochs=1, batch_size=64, verbose=0)
    record = preprocessing.create((32, 32, 1), list("0123456789"), normalization="checkpoint", resize=(36, 36),
                                  statistics=((0.2,), (0.3,)))
    model.save(folder / "lenet5.keras")
    preprocessing.save(record, folder / "lenet5.preprocessing.json")
    png = folder / "digit.png"
    png.write_bytes(tf.io.encode_png(digit_pixels(3, (40, 48), 3)).numpy())  # RGB, 40x48: luma, resize, crop
    export.to_saved_model(model, folder / "serving", preprocessing=record)
    return folder, model, record, png


def predicted(folder, png):
    """``keras-cnn predict``'s top-5 on ``png``: (class names, probabilities)."""
    from keras_cnn.app import predict

    top = predict.main(["--model", str(folder / "lenet5.keras"), "--top-k", "5", str(png)])[str(png)]
    return [name for name, _ in top], np.array([p for _, p in top])


def assert_same_top5(probabilities, names, expected):
    order = np.argsort(-probabilities)[:5]
    assert [str(i) for i in order] == names
    np.testing.assert_allclose(probabilities[order], expected, atol=1e-5)


def test_saved_model_cli_runs_png_bytes_and_uint8_pixels_as_predict(exported, tmp_path):
    folder, _, _, png = exported
    np.save(tmp_path / "bytes.npy", np.array([png.read_bytes()], dtype=object))
    np.save(tmp_path / "pixels.npy", tf.io.decode_png(png.read_bytes()).numpy()[None])
    runs = {signature: subprocess.Popen(
        [SAVED_MODEL_CLI, "run", "--dir", str(folder / "serving" / "1"), "--tag_set", "serve", "--signature_def",
         signature, "--inputs", f"{key}={tmp_path / npy}", "--outdir", str(tmp_path / signature)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for signature, key, npy in (("serving_bytes", "image_bytes", "bytes.npy"),
                                    ("serving_uint8", "image", "pixels.npy"))}  # together: ~10 s each here
    names, expected = predicted(folder, png)
    for signature, run in runs.items():
        output = run.communicate(timeout=120)[0]
        assert run.returncode == 0, output[-2000:]
        assert_same_top5(np.load(tmp_path / signature / "probabilities.npy")[0], names, expected)


def test_raw_signatures_take_any_size_and_channels_in_one_batch(exported):
    folder, model, record, png = exported
    signatures = tf.saved_model.load(str(folder / "serving" / "1")).signatures
    assert sorted(signatures) == ["serving_bytes", "serving_default", "serving_uint8"]
    assert list(signatures["serving_default"].structured_input_signature[1]) == ["image"]  # kept as it was
    names, expected = predicted(folder, png)
    grey_alpha = np.concatenate([digit_pixels(5, (30, 20), 1), np.full((30, 20, 1), 255, "uint8")], axis=-1)
    files = [png.read_bytes(), tf.io.encode_png(grey_alpha).numpy()]  # two sizes and channel counts
    got = signatures["serving_bytes"](image_bytes=tf.constant(files))["probabilities"].numpy()
    assert_same_top5(got[0], names, expected)
    (folder / "grey.png").write_bytes(files[1])
    names, expected = predicted(folder, folder / "grey.png")
    assert_same_top5(got[1], names, expected)
    pixels = np.stack([grey_alpha, grey_alpha])  # uint8: one size per batch, any channels
    uint8 = signatures["serving_uint8"](image=tf.constant(pixels))["probabilities"].numpy()
    np.testing.assert_allclose(uint8, got[[1, 1]], atol=1e-6)


def test_dict_record_and_variables_stored_once(exported, tmp_path):
    _, model, record, _ = exported
    result = export.to_saved_model(model, tmp_path / "dict", preprocessing=record.to_json())  # JSON's dict
    keys = [name for name, _ in tf.train.list_variables(os.path.join(result.path, "variables", "variables"))]
    assert len(keys) == 1 + len(model.weights)  # the object graph plus each weight once
    data_file = os.path.join(result.path, "variables", "variables.data-00000-of-00001")
    assert os.path.getsize(data_file) < 1.05 * 4 * model.count_params()
    plain = export.to_saved_model(model, tmp_path / "plain")
    assert list(tf.saved_model.load(plain.path).signatures) == ["serving_default"]


def test_preprocessing_argument_is_checked(exported, tmp_path):
    _, model, record, _ = exported
    with pytest.raises(TypeError, match="preprocessing must be None, a keras_cnn.app.preprocessing.Preprocessing"):
        export.to_saved_model(model, tmp_path / "a", preprocessing="lenet5.preprocessing.json")
    with pytest.raises(ValueError, match="received a dict without resize, std"):
        export.to_saved_model(model, tmp_path / "b", preprocessing={"input_size": [32, 32], "channels": 1,
                                                                     "mean": [0.0]})
    with pytest.raises(ValueError, match=r"must fit the model's input \(32, 32, 1\); received input_size "
                                         r"\[32, 32\] and channels 3"):
        export.to_saved_model(model, tmp_path / "c", preprocessing={**record.to_json(), "channels": 3,
                                                                     "mean": [0.0] * 3, "std": [1.0] * 3})
    with pytest.raises(ValueError, match="preprocessing is not a valid record: field std"):
        export.to_saved_model(model, tmp_path / "d", preprocessing={**record.to_json(), "std": [0.0]})
    assert not os.listdir(tmp_path)


def test_keras_cnn_export_passes_its_record(exported, tmp_path):
    from keras_cnn.app import export as export_app

    folder, _, _, png = exported
    export_app.main(["--from", str(folder / "lenet5.keras"), "--format", "savedmodel", "--output", str(tmp_path)])
    signature = tf.saved_model.load(str(tmp_path / "lenet5" / "1")).signatures["serving_bytes"]
    names, expected = predicted(folder, png)
    assert_same_top5(signature(image_bytes=tf.constant([png.read_bytes()]))["probabilities"].numpy()[0], names,
                     expected)
