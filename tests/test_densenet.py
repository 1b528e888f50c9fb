"""DenseNet: table values, spec rows, options, and the memory-efficient mode against the plain one."""

import dataclasses
import functools
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_cnn
from keras_cnn import registry
from keras_cnn.layers import ConcatBNReLUConv
from keras_cnn.models.densenet import DenseNetSpec
from tests.counts.densenet import DERIVATION, REFERENCE, derived_count
from tests.spec_variants import build_variant
from tests.test_param_counts import trainable_count

# A small CIFAR-style DenseNet-BC: every kind of layer, a few seconds to trace.
SMALL_ROW = {"block_config": (3, 2, 2), "growth_rate": 4}


def small(spec_changes=(), size=16, **options):
    """densenet_bc_100's builder on the small row (with ``spec_changes``) at ``size``, 3 classes."""
    return build_variant("densenet_bc_100", {**SMALL_ROW, **dict(spec_changes)}, input_shape=(size, size, 3),
                         **options)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_reference_counts_follow_from_the_paper_architecture(name):
    assert derived_count(**DERIVATION[name]) == REFERENCE[name][1]


@pytest.mark.parametrize("depth, growth_rate, millions", [(40, 12, 1.0), (100, 12, 7.0), (100, 24, 27.2)])
def test_derivation_gives_paper_table2_counts_without_b_and_c(depth, growth_rate, millions):
    """DenseNet without B and C (paper Table 2): 3x3 layers only, θ = 1, 16 initial maps."""
    count = derived_count(((depth - 4) // 3,) * 3, growth_rate, 10, stem="cifar", init_features=16,
                          compression=1.0, bottleneck_width=0)
    assert round(count / 1e6, 1) == millions


def test_spec_row_builds_the_plain_densenet_of_table2():
    """DenseNet (L=40, k=12), Table 2's row without B and C: 1.0M parameters, no bottleneck convolutions."""
    model = build_variant("densenet_bc_100", {"block_config": (12, 12, 12), "bottleneck_width": 0,
                                              "compression": 1.0, "init_features": 16}, classes=10)
    assert trainable_count(model) == derived_count((12, 12, 12), 12, 10, stem="cifar", init_features=16,
                                                   compression=1.0, bottleneck_width=0) == 1_019_722
    assert not any(layer.name.endswith(("_conv2", "_bn2")) for layer in model.layers)
    assert model.get_layer("block1_layer1_conv1").kernel_size == (3, 3)


@functools.lru_cache(maxsize=2)
def _headless(name):
    return keras_cnn.build(name, include_top=False)


@pytest.mark.parametrize("name, channels, transitions", [
    pytest.param("densenet121", 1024, (128, 256, 512), marks=pytest.mark.xdist_group("densenet121_headless")),
    ("densenet_bc_100", 342, (108, 150)),
])
def test_feature_channels_and_resolution(name, channels, transitions):
    model = _headless(name)
    size = model.input_shape[1]
    expected_map = size // 32 if size == 224 else size // 4
    assert model.output_shape[1:] == (expected_map, expected_map, channels)
    convs = [model.get_layer(f"transition{i}_conv").filters for i in range(1, len(transitions) + 1)]
    assert tuple(convs) == transitions


@pytest.mark.xdist_group("densenet121_headless")  # shares the cached model with the test above
def test_layer_names_follow_the_documented_scheme():
    names = {layer.name for layer in _headless("densenet121").layers}
    assert {"conv1", "conv1_bn", "conv1_relu", "pool1", "block1_layer1_bn1", "block1_layer1_conv1",
            "block1_layer1_bn2", "block1_layer1_conv2", "block1_layer2_concat", "transition1_bn",
            "transition1_conv", "transition1_pool", "block4_layer16_conv2", "block4_layer16_concat", "final_bn",
            "final_relu"} <= names
    efficient = {layer.name for layer in small(memory_efficient=True).layers}
    assert {"block1_layer1_concat_conv1", "block1_layer1_bn2", "transition2_concat_conv", "block3_layer2_concat",
            "predictions"} <= efficient
    assert not any(name.endswith("_bn1") for name in efficient)


def test_dropout_after_every_convolution_but_the_first():
    model = small(dropout=0.2)
    dropouts = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts[:3] == ["block1_layer1_dropout1", "block1_layer1_dropout2", "block1_layer2_dropout1"]
    assert "transition1_dropout" in dropouts
    blocks = SMALL_ROW["block_config"]
    assert len(dropouts) == 2 * sum(blocks) + len(blocks) - 1


def _pair(spec_changes, size):
    """A plain and a memory-efficient model with the same weights."""
    plain, efficient = (small(spec_changes, size, memory_efficient=mode) for mode in (False, True))
    assert [w.shape for w in plain.weights] == [w.shape for w in efficient.weights]
    efficient.set_weights(plain.get_weights())
    return plain, efficient


def _forward_backward(model, images, labels, graph):
    """Outputs and gradients (input and weights) of a training pass, traced as ``fit`` runs it (``graph``) or
    eager."""

    def step():
        with tf.GradientTape() as tape:
            tape.watch(images)
            outputs = model(images, training=True)
            loss = keras.losses.sparse_categorical_crossentropy(labels, outputs)
        return outputs, tape.gradient(loss, [images] + model.trainable_weights)

    return (tf.function(step) if graph else step)()


# (bottleneck_width, block_config, growth_rate, size, batch, graph)
COMPARISONS = [
    pytest.param(4, (6, 6, 6), 8, 32, 16, True, id="bottleneck_graph"),
    pytest.param(0, (3, 2, 2), 4, 16, 4, False, id="no_bottleneck_eager"),
]


@pytest.mark.parametrize("bottleneck_width, block_config, growth_rate, size, batch, graph", COMPARISONS)
def test_memory_efficient_mode_same_results(bottleneck_width, block_config, growth_rate, size, batch, graph):
    """Same outputs, gradients and BN statistics as the plain mode."""
    plain, efficient = _pair({"block_config": block_config, "growth_rate": growth_rate,
                              "bottleneck_width": bottleneck_width}, size)
    images = tf.constant(np.random.default_rng(0).normal(size=(batch, size, size, 3)), tf.float32)
    labels = tf.constant(np.arange(batch) % 3)
    out_plain, grads_plain = _forward_backward(plain, images, labels, graph)
    out_efficient, grads_efficient = _forward_backward(efficient, images, labels, graph)
    np.testing.assert_allclose(out_efficient, out_plain, rtol=1e-5, atol=1e-6)
    assert len(grads_efficient) == len(grads_plain)
    for weight, g_efficient, g_plain in zip(["image"] + plain.trainable_weights, grads_efficient, grads_plain):
        scale = float(tf.reduce_max(tf.abs(g_plain))) + 1e-12
        np.testing.assert_allclose(g_efficient / scale, g_plain / scale, atol=1e-5, err_msg=str(weight))
    # the moving statistics moved once per training call, not twice (the recomputation must not update them)
    for w_efficient, w_plain in zip(efficient.non_trainable_weights, plain.non_trainable_weights):
        np.testing.assert_allclose(w_efficient, w_plain, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(efficient(images, training=False), plain(images, training=False), atol=1e-5)


def test_memory_efficient_mode_lower_tensor_peak():
    """The check tensorflow issue 36981 calls for: a really lower tensor peak for one traced training step
    (tests/densenet_peak.py, in a child process with TensorFlow's BFC allocator, whose statistics exist with
    oneDNN on or off). Measured on an AMD EPYC (Zen 4): 0.60x with oneDNN on, 0.70x with it off (Eigen's
    convolution gradients take workspace that recomputation does not shrink), so the bound is 0.8x."""
    env = {**os.environ, "TF_CPU_ALLOCATOR_USE_BFC": "true"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "tests.densenet_peak"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    peaks = json.loads(done.stdout.strip().splitlines()[-1])
    assert 0 < peaks["efficient"] < 0.8 * peaks["plain"], peaks


def test_memory_efficient_model_saves_and_reloads(tmp_path):
    efficient = small(memory_efficient=True, dropout=0.1)
    path = tmp_path / "efficient.keras"
    efficient.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    layer = reloaded.get_layer("block1_layer2_concat_conv1")
    assert isinstance(layer, ConcatBNReLUConv) and layer.recompute
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in reloaded.layers)
    images = np.random.default_rng(1).uniform(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(reloaded(images, training=False), efficient(images, training=False), atol=1e-6)


def test_concat_bn_relu_conv_layer_config_and_frozen_bn():
    layer = ConcatBNReLUConv(8, 3, recompute=False, name="unit")
    clone = ConcatBNReLUConv.from_config(layer.get_config())
    assert (clone.filters, clone.kernel_size, clone.recompute, clone.name) == (8, 3, False, "unit")
    pieces = [tf.random.normal((2, 5, 5, 3)), tf.random.normal((2, 5, 5, 4))]
    assert layer(pieces).shape == (2, 5, 5, 8)
    layer.trainable = False  # frozen BN normalises with its moving statistics, as keras' BatchNormalization
    moving = layer.bn.moving_mean.numpy().copy()
    np.testing.assert_allclose(layer(pieces, training=True), layer(pieces, training=False))
    np.testing.assert_array_equal(layer.bn.moving_mean.numpy(), moving)
    with pytest.raises(TypeError, match="recompute must be True or False"):
        ConcatBNReLUConv(8, recompute="yes")


@pytest.mark.parametrize("changes, error, match", [
    ({"growth_rate": 0}, ValueError, "growth_rate must be >= 1"),
    ({"block_config": ()}, TypeError, "block_config must be a non-empty tuple"),
    ({"block_config": (6, 0)}, ValueError, r"block_config\[1\] must be >= 1"),
    ({"block_config": 6}, TypeError, "block_config must be a non-empty tuple"),
    ({"compression": 0}, ValueError, "compression must be in"),
    ({"compression": 1.5}, ValueError, "compression must be <= 1.0"),
    ({"bottleneck_width": -1}, ValueError, "bottleneck_width must be >= 0"),
    ({"init_features": 2.5}, TypeError, "init_features must be an integer"),
    ({"stem": "deep"}, ValueError, "stem must be one of 'imagenet', 'cifar'"),
])
def test_spec_row_errors_name_the_field(changes, error, match):
    with pytest.raises(error, match=match):
        dataclasses.replace(registry.get("densenet121").spec, **changes)


@pytest.mark.parametrize("options, error, match", [
    ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\); received 1.0"),
    ({"memory_efficient": "yes"}, TypeError, "memory_efficient must be True or False"),
    ({"growth_rate": 12}, TypeError,
     "Unknown option.*'growth_rate'.*its options are: bn_epsilon, dropout, memory_efficient"),
])
def test_option_errors_name_the_argument(options, error, match):
    with pytest.raises(error, match=match):
        keras_cnn.build("densenet121", input_shape=(32, 32, 3), **options)


def test_a_row_too_deep_for_the_input_names_the_minimum():
    with pytest.raises(ValueError, match="at least 61 for 5 dense blocks"):
        build_variant("densenet121", {"block_config": (1, 1, 1, 1, 1)}, input_shape=(32, 32, 3))


def test_variants_are_spec_rows_of_the_paper_tables():
    assert registry.get("densenet161").spec.growth_rate == 48
    bc190 = registry.get("densenet_bc_190")
    assert bc190.spec == DenseNetSpec((31,) * 3, 40, "cifar", init_features=None, compression=0.5,
                                      bottleneck_width=4)
    assert bc190.options == {"dropout": 0.0, "memory_efficient": False, "bn_epsilon": 1e-5}
    assert (bc190.default_input, bc190.min_input, registry.get("densenet121").min_input) == ((32, 32, 3), 4, 29)
