"""keras_cnn.weights: reading checkpoint files, recognising them, converting with every check, recording the
checkpoint's preprocessing. Function-level agreement with the upstream libraries: test_weights_upstream.py and
the per-family test_weights_*.py."""

import io
import logging
import os
import pickle
import zipfile

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import _weights
from keras_cnn.weights import synthetic
from keras_cnn.weights._catalog import Upstream
from keras_cnn.weights._mapping import substitute
from keras_cnn.weights._readers import read_checkpoint, write_safetensors
# A LeNet-5 checkpoint in PyTorch's naming (features.0 = c1, ...): small, so the mechanism is tested in seconds.
from tests.lenet_checkpoint import LENET_MANIFEST, lenet_file, lenet_upstream  # noqa: F401  (fixtures)

GOLDENS = os.path.join(os.path.dirname(__file__), "goldens")


def torch_lenet(tensors, x):
    """LeNet-5 (tanh, average pooling: keras_cnn's defaults) in NumPy on NCHW weights, as the reference."""
    def conv(x, w, b):
        k = w.shape[-1]
        out = np.zeros((x.shape[0], x.shape[1] - k + 1, x.shape[2] - k + 1, w.shape[0]))
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                out[:, i, j] = np.einsum("nhwc,ochw->no", x[:, i:i + k, j:j + k], w)
        return out + b

    def pool(x):
        return x.reshape(x.shape[0], x.shape[1] // 2, 2, x.shape[2] // 2, 2, x.shape[3]).mean(axis=(2, 4))

    t = tensors
    x = pool(np.tanh(conv(x, t["features.0.weight"], t["features.0.bias"])))
    x = pool(np.tanh(conv(x, t["features.3.weight"], t["features.3.bias"])))
    x = np.tanh(conv(x, t["features.6.weight"], t["features.6.bias"])).reshape(x.shape[0], -1)
    x = np.tanh(x @ t["classifier.0.weight"].T + t["classifier.0.bias"])
    return x @ t["classifier.2.weight"].T + t["classifier.2.bias"]


def test_converted_lenet_computes_the_reference_function(lenet_upstream, lenet_file):
    model = keras_cnn.build("lenet5", weights=lenet_file, classes=10, classifier_activation=None)
    x = np.random.default_rng(0).standard_normal((3, 32, 32, 1)).astype("float32")
    reference = torch_lenet(read_checkpoint(lenet_file).tensors, x)
    assert synthetic.relative_error(model.predict(x, verbose=0), reference) < 1e-5
    assert keras_cnn.weights.checkpoint_info(model) == {
        "source": "torchvision", "upstream": "lenet_test", "file": "lenet.safetensors",
        "preprocessing": {"input_size": [32, 32], "resize": [32, 32], "mean": [0.5], "std": [0.25],
                          "interpolation": "bilinear"}}


def test_a_checkpoint_read_once_builds_the_same_model(lenet_upstream, lenet_file):
    checkpoint = read_checkpoint(lenet_file)
    model = keras_cnn.build("lenet5", weights=checkpoint, classes=10)
    from_path = keras_cnn.build("lenet5", weights=lenet_file, classes=10)
    mine, theirs = _weights.canonical_weights(model), _weights.canonical_weights(from_path)
    assert all(np.array_equal(mine[k], theirs[k]) for k in theirs)
    assert keras_cnn.weights.checkpoint_info(model) == keras_cnn.weights.checkpoint_info(from_path)


def test_checkpoint_record_survives_save_load_and_rebuild(lenet_upstream, lenet_file, tmp_path):
    model = keras_cnn.build("lenet5", weights=lenet_file, classes=10)
    path = str(tmp_path / "lenet.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert keras_cnn.weights.checkpoint_info(loaded) == keras_cnn.weights.checkpoint_info(model)
    rebuilt = keras_cnn.rebuild(loaded, classes=3)
    assert keras_cnn.weights.checkpoint_info(rebuilt)["upstream"] == "lenet_test"
    x = np.random.default_rng(1).standard_normal((2, 32, 32, 1)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_other_classes_keep_the_trunk_and_start_a_new_head(lenet_upstream, lenet_file, caplog):
    full = keras_cnn.build("lenet5", weights=lenet_file, classes=10)
    with caplog.at_level(logging.WARNING, logger="keras_cnn.weights"):
        model = keras_cnn.build("lenet5", weights=lenet_file, classes=4)
    assert "the classifier starts from fresh weights" in caplog.text
    mine, theirs = _weights.canonical_weights(model), _weights.canonical_weights(full)
    for key in ("c1/kernel", "c5/bias", "f6/kernel"):
        np.testing.assert_array_equal(mine[key], theirs[key])
    assert mine["predictions/kernel"].shape == (84, 4)


def test_include_top_false_loads_the_trunk_only(lenet_upstream, lenet_file):
    full = keras_cnn.build("lenet5", weights=lenet_file, classes=10)
    trunk = keras_cnn.build("lenet5", weights=lenet_file, include_top=False)
    x = np.random.default_rng(2).standard_normal((2, 32, 32, 1)).astype("float32")
    expected = keras.Model(full.inputs, full.get_layer("c5").output).predict(x, verbose=0)
    np.testing.assert_allclose(trunk.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("change, message", [
    (lambda t: t.pop("features.6.bias"), "lacks tensor(s) 'features.6.bias' (for 'c5/bias')"),
    (lambda t: t.update({"extra.weight": np.zeros(3, "float32")}), "has tensor(s) 'extra.weight' (3,)"),
    (lambda t: t.update({"features.3.weight": np.zeros((16, 6, 3, 3), "float32")}),
     "'features.3.weight' (16, 6, 3, 3) of lenet.safetensors"),
], ids=["missing", "unexpected", "shape"])
def test_a_mismatched_checkpoint_is_one_clear_error_and_nothing_loads(lenet_upstream, tmp_path, change, message):
    tensors = synthetic.checkpoint(LENET_MANIFEST)
    change(tensors)
    path = write_safetensors(tensors, str(tmp_path / "lenet.safetensors"))
    model = keras_cnn.build("lenet5", classes=10)
    before = _weights.canonical_weights(model)
    with pytest.raises(ValueError, match="nothing was loaded|Nothing was loaded") as error:
        keras_cnn.weights.load_checkpoint(model, path)
    assert message in str(error.value)
    after = _weights.canonical_weights(model)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_a_checkpoint_of_another_model_names_what_it_looks_like(lenet_upstream, lenet_file):
    with pytest.raises(ValueError, match=r"matches no known checkpoint of 'vgg11'.*It looks like "
                                         r"torchvision:lenet_test \(keras_cnn 'lenet5'\)"):
        keras_cnn.build("vgg11", weights=lenet_file)


def test_weights_source_narrows_and_refuses(lenet_upstream, lenet_file):
    with pytest.raises(ValueError, match="matches no known checkpoint of 'lenet5'"):
        keras_cnn.build("lenet5", weights=lenet_file, weights_source="timm")
    with pytest.raises(ValueError, match="weights_source applies to upstream checkpoints"):
        keras_cnn.build("lenet5", weights_source="timm")


def test_option_conflicts_name_the_option():
    from keras_cnn.weights._convert import build_options

    upstream = Upstream(source="timm", name="x", model="resnet50", mapping=None, signature=(),
                        preprocessing={}, options={"padding": "symmetric"})
    assert build_options(upstream, {"dropout": 0.3}) == {"dropout": 0.3, "padding": "symmetric"}
    with pytest.raises(ValueError, match="timm:x weights need padding='symmetric' for 'resnet50'; received "
                                         "padding='same'"):
        build_options(upstream, {"padding": "same"})


def test_torch_zip_checkpoints_read_without_torch():
    """tests/goldens/torch_format.pth was written by torch.save (tools/make_torch_sample.py): float32/16, bfloat16,
    int64 scalars, booleans, a transposed view and a view at a storage offset."""
    tensors = read_checkpoint(os.path.join(GOLDENS, "torch_format.pth")).tensors
    with np.load(os.path.join(GOLDENS, "torch_format.npz")) as expected:
        assert sorted(tensors) == sorted(expected.files)
        for name in expected.files:
            assert tensors[name].shape == expected[name].shape, name
            np.testing.assert_array_equal(tensors[name].astype(expected[name].dtype), expected[name])


class _Exploit:
    def __reduce__(self):
        return os.system, ("echo unsafe",)


def test_a_torch_file_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps({"w": _Exploit()}))
    with pytest.raises(ValueError, match="could not be read as torch: UnpicklingError: the checkpoint refers to "
                                         r"(posix|os|nt)\.system"):
        read_checkpoint(str(path))


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_files_are_refused(lenet_file, tmp_path, cut):
    data = open(lenet_file, "rb").read()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ValueError, match="truncated|not a complete safetensors"):
        read_checkpoint(str(path))
    torch_data = open(os.path.join(GOLDENS, "torch_format.pth"), "rb").read()
    cut_torch = tmp_path / "cut.pth"
    cut_torch.write_bytes(torch_data[: int(len(torch_data) * cut)])
    with pytest.raises(ValueError, match="cut.pth"):
        read_checkpoint(str(cut_torch))


def test_unknown_formats_and_missing_files_are_refused(tmp_path):
    odd = tmp_path / "weights.onnx"
    odd.write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match=r"has an unknown format; expected one of \['.bin', '.ckpt', '.h5'"):
        read_checkpoint(str(odd))
    with pytest.raises(ValueError, match="does not exist"):
        read_checkpoint(str(tmp_path / "none.pth"))
    plain = tmp_path / "plain.h5"
    import h5py

    with h5py.File(plain, "w") as file:
        file["x"] = np.zeros(2)
    with pytest.raises(ValueError, match="without Keras's 'layer_names'"):
        read_checkpoint(str(plain))


def test_preprocess_input_uses_the_checkpoint_record(lenet_upstream):
    images = np.full((1, 2, 2, 3), 255, np.uint8)
    out = keras_cnn.weights.preprocess_input("vgg16", images, source="torchvision")
    np.testing.assert_allclose(out[0, 0, 0], (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]),
                               rtol=1e-6)
    caffe = keras_cnn.weights.preprocess_input("vgg16", images, source="keras.applications")
    np.testing.assert_allclose(caffe[0, 0, 0], [255 - 123.68, 255 - 116.779, 255 - 103.939], rtol=1e-5)
    with pytest.raises(ValueError, match="no upstream checkpoint is known for model 'nin'"):
        keras_cnn.weights.preprocess_input("nin", images)


def test_weights_imagenet_says_what_to_do():
    with pytest.raises(ValueError, match="pass the path of a torchvision, timm or keras.applications checkpoint"):
        keras_cnn.build("resnet50", weights="imagenet")


def test_the_substitute_rule_takes_the_first_full_match():
    rename = substitute([(r"stage(\d)_block(\d)_conv1", r"layer\1.\2.conv1"), (r"stem_(.*)", r"\1")])
    assert rename("stage2_block3_conv1") == "layer2.3.conv1"
    assert rename("stage2_block3_conv1_bn") is None
    assert rename("stem_conv") == "conv"


def test_every_registered_upstream_names_a_registered_model_and_a_signature():
    for upstream in keras_cnn.weights.upstreams():
        assert upstream.model in keras_cnn.list_models(), upstream.key
        assert upstream.signature, upstream.key
        assert set(upstream.preprocessing) >= {"input_size", "resize", "mean", "std"}, upstream.key


def test_buffer_is_not_a_path_error():
    with pytest.raises(TypeError, match="weights must be None or a path"):
        keras_cnn.build("lenet5", weights=io.BytesIO())
