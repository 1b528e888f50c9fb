"""The build config that travels with a model, and variants that share its weights (keras_cnn.model)."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import _weights, registry
from keras_cnn.model import CLASSIFIER_LAYERS, int8_form
from tests.conftest import model_params, random_images, small_size

MODELS = model_params(harness=True)
# the layers a classifier adds to a trunk, by name (the shared head in keras_cnn/_head.py)
HEAD_LAYERS = (*CLASSIFIER_LAYERS, "f6", "fc6", "fc7", "head_fc")  # head_fc: MobileNetV3's last hidden layer


def randomise(model, seed=0):
    """Distinct values in every weight, realistic batch-norm statistics (gamma, beta, mean, variance), so a
    weight copied to the wrong place, or not at all, changes the outputs."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        kind = variable.path.rsplit("/", 1)[-1]
        if kind in ("gamma", "moving_variance"):
            variable.assign(rng.uniform(0.5, 1.5, variable.shape))
        elif kind in ("beta", "moving_mean", "bias"):
            variable.assign(rng.uniform(-0.2, 0.2, variable.shape))
        else:
            variable.assign(variable.numpy() * rng.uniform(0.8, 1.2, variable.shape))
    return model


def compatible_changes(config):
    """Option changes that keep every weight's meaning and the inference function, for this model's family."""
    changes = {}
    for option in ("dropout", "aux_dropout", "drop_connect_rate"):
        if option in config:
            changes[option] = 0.1 if config[option] == 0 else 0.0
    if "drop_path_rate" in config:  # per-sample drop path is the identity at inference
        changes.update(drop_path_rate=0.1, drop_path_mode="sample")
    if "zero_init_last" in config:
        changes["zero_init_last"] = not config["zero_init_last"]
    if "memory_efficient" in config:
        changes["memory_efficient"] = not config["memory_efficient"]
    if "grouped_conv" in config:
        changes.update(grouped_conv="split", shortcut_pool="depthwise")
    return changes


def assert_close(got, expected):
    scale = float(np.max(np.abs(expected))) or 1.0
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * scale)


def predict(model, images):
    return keras.ops.convert_to_numpy(model(images, training=False))


def small_logits_model(name):
    size = small_size(name)
    options = {"zero_init_last": True} if name == "resnet1202" else {}  # see test_models: untrained ~1e37
    model = keras_cnn.build(name, input_shape=(size, size, 3), classes=3, classifier_activation=None, **options)
    return randomise(model)


@pytest.mark.parametrize("name", MODELS)
def test_config_rebuilds_the_architecture_and_variants_share_weights(name):
    """The config names the model; a rebuild with weight-compatible changes (and without the head: one build
    checks both) computes the same trunk as the model, weight for weight."""
    model = small_logits_model(name)
    config = keras_cnn.model_config(model)
    assert config["model_name"] == name and config["classes"] == 3 and config["include_top"] is True
    assert set(registry.get(name).options) <= set(config)
    json.dumps({k: v for k, v in config.items() if k != "classifier_activation"})  # plain data

    changes = compatible_changes(config)
    trunk = keras_cnn.rebuild(model, **changes, include_top=False, name="trunk")
    assert keras_cnn.model_config(trunk) == {**config, **changes, "include_top": False, "name": "trunk"}
    head = set(_weights.canonical_shapes(model)) - set(_weights.canonical_shapes(trunk))
    assert head and all(key.split("/")[0] in HEAD_LAYERS for key in head), head
    deepest = model.get_layer(trunk.layers[-1].name).output  # the same layer feeds the head in the model
    images = random_images(model)
    assert_close(predict(trunk, images), predict(keras.Model(model.inputs, deepest), images))


@pytest.mark.parametrize("name", ["vgg11", "nin", "squeezenet1_1", "googlenet", "resnet18"])
def test_build_from_config_and_new_classes(name):
    """``build(**model_config(m))`` is the same architecture; a new ``classes`` keeps everything but the
    classifier (VGG's fc6/fc7 included) and gives the classifier fresh weights."""
    model = small_logits_model(name)
    config = keras_cnn.model_config(model)
    again = keras_cnn.build(**config)
    assert [layer.name for layer in again.layers] == [layer.name for layer in model.layers]
    assert _weights.canonical_shapes(again) == _weights.canonical_shapes(model)
    retargeted = keras_cnn.rebuild(model, classes=5)
    assert retargeted.output_shape[-1] == 5
    old, new = _weights.canonical_weights(model), _weights.canonical_weights(retargeted)
    kept = [key for key in old if key.split("/")[0] not in CLASSIFIER_LAYERS]
    assert len(kept) < len(old) and all(np.array_equal(old[key], new[key]) for key in kept)


def test_config_is_read_in_another_process_without_the_builder(tmp_path):
    """The .keras file carries the config: a fresh interpreter (another machine) reads it back and rebuilds."""
    model = randomise(keras_cnn.build("resnet18", input_shape=(64, 64, 3), classes=4, dropout=0.2,
                                      classifier_activation=keras.activations.softplus))
    model.save(tmp_path / "m.keras")
    images = random_images(model)
    np.save(tmp_path / "x.npy", images)
    script = (
        "import json, sys, numpy as np, keras, keras_cnn\n"
        f"m = keras.saving.load_model({str(tmp_path / 'm.keras')!r}, safe_mode=True)\n"
        "c = keras_cnn.model_config(m)\n"
        "r = keras_cnn.rebuild(m, dropout=0.0)\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        "print(json.dumps({'config': {k: v for k, v in c.items() if k != 'classifier_activation'},\n"
        "                  'activation': c['classifier_activation'].__name__,\n"
        "                  'out': keras.ops.convert_to_numpy(r(x, training=False)).tolist()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    expected = keras_cnn.model_config(model)
    assert result["activation"] == "softplus"
    assert result["config"]["dropout"] == 0.2 and result["config"]["input_shape"] == [64, 64, 3]
    assert result["config"]["classes"] == expected["classes"] == 4
    assert_close(np.array(result["out"]), predict(model, images))


def test_weight_compatible_pairs_the_readme_names():
    images = np.random.default_rng(3).uniform(size=(2, 64, 64, 3)).astype("float32")
    for name, changes in [("densenet121", {"memory_efficient": True}),
                          ("resnet50", {"drop_path_rate": 0.2, "drop_path_mode": "sample"}),
                          ("shufflenet_v1_g3", {"grouped_conv": "split", "shortcut_pool": "depthwise"}),
                          ("efficientnet_b0", {"drop_connect_rate": 0.0, "dropout": 0.5})]:
        model = randomise(keras_cnn.build(name, input_shape=(64, 64, 3), classes=4, classifier_activation=None))
        assert_close(predict(keras_cnn.rebuild(model, **changes), images), predict(model, images))


def test_batch_mode_stochastic_depth_keeps_weights_and_scales_branches_at_inference():
    model = randomise(keras_cnn.build("resnet18", input_shape=(32, 32, 3), classes=4, classifier_activation=None))
    dropped = keras_cnn.rebuild(model, drop_path_rate=0.5)  # Huang et al.: p_l * f(x) at test time
    assert _weights.canonical_weights(dropped).keys() == _weights.canonical_weights(model).keys()
    images = random_images(model)
    assert not np.allclose(predict(dropped, images), predict(model, images), atol=1e-3)
    assert_close(predict(keras_cnn.rebuild(dropped, drop_path_rate=0.0), images), predict(model, images))


def test_auxiliary_heads_dropped_by_rebuild_or_inference_model():
    model = randomise(keras_cnn.build("googlenet", aux_logits=True, classes=3, classifier_activation=None))
    images = random_images(model, batch=1)
    main = predict(model, images)[0]
    for deployed in (keras_cnn.inference_model(model), keras_cnn.rebuild(model, aux_logits=False)):
        assert deployed.output_names == ["predictions"]
        assert keras_cnn.model_config(deployed)["aux_logits"] is False
        assert_close(predict(deployed, images), main)


def test_dtype_rebuild_for_export_after_mixed_precision():
    model = randomise(keras_cnn.build("mobilenet_v2", input_shape=(32, 32, 3), classes=4, dtype="mixed_bfloat16",
                                      classifier_activation=None))
    assert keras_cnn.model_config(model)["dtype"] == "mixed_bfloat16"
    assert model.get_layer("predictions").compute_dtype == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left alone
    exported = keras_cnn.rebuild(model, dtype="float32")
    assert all(layer.compute_dtype == "float32" for layer in exported.layers)
    images = random_images(model)
    np.testing.assert_allclose(predict(exported, images), predict(model, images).astype("float32"), atol=0.1)


def test_int8_form_is_read_from_the_config_not_the_layer_names():
    model = keras_cnn.build("shufflenet_v1_g3", input_shape=(32, 32, 3), classes=3)
    form = int8_form(model)
    assert keras_cnn.model_config(form)["grouped_conv"] == "split"
    plain = keras.Model(model.inputs, model.outputs)  # a re-wrapped graph has no config: exported as it is
    assert int8_form(plain) is plain


@pytest.mark.parametrize("changes, error, match", [
    ({"scale": 0.5}, ValueError, r"rebuild\('shufflenet_v1_g3'\): scale=0.5 changes what the weights compute "
                                 r"\(from scale=1.0\).* may change are: .*grouped_conv"),
    ({"input_shape": (32, 32, 1)}, ValueError, r"weight 'conv1/kernel' changes shape \(3, 3, 3, 24\) -> "),
    ({"widths": 2}, TypeError, r"unknown argument\(s\) 'widths' .* its arguments are: .*grouped_conv"),
])
def test_rebuild_refuses_changes_that_alter_weights(changes, error, match):
    model = keras_cnn.build("shufflenet_v1_g3", input_shape=(32, 32, 3), classes=3)
    with pytest.raises(error, match=match):
        keras_cnn.rebuild(model, **changes)


@pytest.mark.parametrize("name, changes", [("resnet50", {"stride_in_1x1": True}), ("lenet5", {"activation": "relu"}),
                                           ("squeezenet1_1", {"bypass": "simple"})])
def test_rebuild_refuses_options_that_keep_shapes_but_change_the_function(name, changes):
    """Same weight shapes, another function: carrying the weights over would be a silent wrong result."""
    model = keras_cnn.build(name, include_top=False, input_shape=(64, 64, 1 if name == "lenet5" else 3))
    option = next(iter(changes))
    with pytest.raises(ValueError, match=f"{option}=.* changes what the weights compute"):
        keras_cnn.rebuild(model, **changes)


def test_models_without_a_config_are_named_in_the_error():
    plain = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)], name="mine")
    with pytest.raises(ValueError, match="model 'mine' .* carries no keras_cnn build config"):
        keras_cnn.model_config(plain)
    with pytest.raises(TypeError, match="must be a keras.Model"):
        keras_cnn.model_config("resnet50")
    with pytest.raises(ValueError, match="dtype must be a Keras dtype policy name"):
        keras_cnn.build("lenet5", dtype="float8")
