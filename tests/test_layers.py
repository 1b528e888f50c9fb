"""Reusable blocks: LRN against the paper's formula, serialisation, conv_bn_act naming."""

import keras
import numpy as np
import pytest

from keras_cnn.layers import LocalResponseNormalization, conv_bn_act


def lrn_reference(a, n=5, alpha=1e-4, beta=0.75, k=2.0):
    """Krizhevsky et al. (2012) eq. in §3.3, written with an explicit loop over channels."""
    channels = a.shape[-1]
    out = np.empty_like(a)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        out[..., i] = a[..., i] / (k + alpha * np.sum(a[..., lo:hi + 1] ** 2, axis=-1)) ** beta
    return out


@pytest.mark.parametrize("n, alpha, beta, k", [(5, 1e-4, 0.75, 2.0), (3, 0.5, 0.5, 1.0)])
def test_lrn_matches_the_paper_formula(n, alpha, beta, k):
    a = np.random.default_rng(0).normal(0, 10, size=(2, 4, 5, 11)).astype("float32")
    layer = LocalResponseNormalization(size=n, alpha=alpha, beta=beta, k=k)
    np.testing.assert_allclose(layer(a).numpy(), lrn_reference(a, n, alpha, beta, k), rtol=1e-5)


def test_lrn_round_trips_through_config_and_rejects_bad_size():
    layer = LocalResponseNormalization(size=3, alpha=2e-4, beta=0.5, k=1.0, name="lrn")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, LocalResponseNormalization)
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="size must be an odd"):
        LocalResponseNormalization(size=4)
    with pytest.raises(TypeError, match="size must be an integer"):
        LocalResponseNormalization(size=2.5)


def test_conv_bn_act_names_and_bias():
    inputs = keras.Input((8, 8, 3))
    outputs = [
        conv_bn_act(inputs, 4, 3, name="fused"),
        conv_bn_act(inputs, 4, 3, batch_norm=True, name="stem"),
        conv_bn_act(inputs, 4, 1, batch_norm=True, use_bias=True, activation="tanh", name="kept"),
    ]
    model = keras.Model(inputs, outputs)
    assert {layer.name for layer in model.layers[1:]} == {
        "fused", "stem", "stem_bn", "stem_relu", "kept", "kept_bn", "kept_tanh"}
    assert model.get_layer("fused").activation is keras.activations.relu
    assert model.get_layer("fused").use_bias is True
    assert model.get_layer("stem").use_bias is False
    assert model.get_layer("kept").use_bias is True


def test_squeeze_excite_rescales_channels_with_paper_parameter_count():
    from keras_cnn.layers import squeeze_excite

    inputs = keras.Input((5, 5, 64))
    model = keras.Model(inputs, squeeze_excite(inputs, 4, name="se"))
    assert model.count_params() == (64 * 4 + 4) + (4 * 64 + 64)  # two FC layers of Hu et al., with biases
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 64)).astype("float32")
    scale = model(x).numpy() / x
    assert np.allclose(scale, scale[:, :1, :1, :], atol=1e-5)  # one factor per sample and channel
    assert np.all((scale > 0) & (scale < 1))


def test_drop_path_drops_whole_samples_and_is_identity_at_inference():
    from keras_cnn.layers import DropPath

    layer = DropPath(0.5, seed=1)
    x = np.ones((4000, 2, 2, 3), "float32")
    np.testing.assert_array_equal(layer(x, training=False), x)
    out = layer(x, training=True).numpy()
    per_sample = out.reshape(len(x), -1)
    assert set(np.unique(per_sample)) == {0.0, 2.0}
    assert np.all(per_sample.min(axis=1) == per_sample.max(axis=1))  # a sample is kept or dropped whole
    assert abs(out.mean() - 1.0) < 0.05  # expectation preserved
    clone = DropPath.from_config(layer.get_config())
    assert clone.rate == 0.5
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\); received 1.0"):
        DropPath(1.0)


@pytest.mark.parametrize("scale, center", [(True, True), (False, True), (True, False)])
def test_fused_batch_norm_matches_keras_at_inference_and_in_training(scale, center):
    import tensorflow as tf

    from keras_cnn.layers.normalization import BatchNormalization

    rng = np.random.default_rng(0)
    x = rng.normal(1, 3, size=(2, 5, 6, 7)).astype("float32")
    ours, theirs = (cls(epsilon=1e-5, scale=scale, center=center) for cls in
                    (BatchNormalization, keras.layers.BatchNormalization))
    ours.build(x.shape)
    theirs.build(x.shape)
    weights = [rng.uniform(0.5, 2.0, w.shape).astype("float32") for w in theirs.get_weights()]
    for layer in (ours, theirs):
        layer.set_weights(weights)
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), rtol=1e-5, atol=1e-5)
    # inference and training are each one FusedBatchNormV3 (inference: what grappler folds into the convolution)
    for training in (False, True):
        graph = tf.function(lambda t, training=training: ours(t, training=training)).get_concrete_function(
            tf.TensorSpec(x.shape)).graph
        assert "FusedBatchNormV3" in {op.type for op in graph.get_operations()}, training
    ours.set_weights(weights)  # tracing training=True updated the moving statistics
    x = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outputs = [layer(x, training=True) for layer in (ours, theirs)]
        losses = [tf.reduce_sum(y * y * 0.25 + y * tf.range(7, dtype="float32")) for y in outputs]
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    # the moving statistics move as Keras's (the biased batch variance, not the fused op's unbiased one)
    np.testing.assert_allclose(ours.moving_mean.numpy(), theirs.moving_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.moving_variance.numpy(), theirs.moving_variance.numpy(), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(losses[0], x), tape.gradient(losses[1], x), rtol=1e-4, atol=1e-5)
    for mine, keras_grad in zip(tape.gradient(losses[0], ours.trainable_weights),
                                tape.gradient(losses[1], theirs.trainable_weights)):
        np.testing.assert_allclose(mine, keras_grad, rtol=1e-4, atol=1e-4)
    assert isinstance(keras.layers.deserialize(keras.layers.serialize(ours)), BatchNormalization)
