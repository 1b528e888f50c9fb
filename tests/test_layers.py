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
