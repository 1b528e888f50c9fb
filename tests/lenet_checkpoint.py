"""A LeNet-5 checkpoint in PyTorch's naming (features.0 = c1, ...), registered as the upstream
``torchvision:lenet_test`` for the tests that ask for it: small, so the weights machinery (test_weights.py) and
the apps around it (test_weights_apps.py) are tested in seconds. Import the fixtures into a test module to use
them."""

import contextlib

import pytest

from keras_cnn.weights import _catalog, synthetic
from keras_cnn.weights._catalog import Upstream, imagenet
from keras_cnn.weights._mapping import torch_rule
from keras_cnn.weights._readers import write_safetensors

LENET_NAMES = {"c1": "features.0", "c3": "features.3", "c5": "features.6", "f6": "classifier.0",
               "predictions": "classifier.2"}
LENET_MANIFEST = [("features.0.weight", (6, 1, 5, 5)), ("features.0.bias", (6,)), ("features.3.weight", (16, 6, 5, 5)),
                  ("features.3.bias", (16,)), ("features.6.weight", (120, 16, 5, 5)), ("features.6.bias", (120,)),
                  ("classifier.0.weight", (84, 120)), ("classifier.0.bias", (84,)),
                  ("classifier.2.weight", (10, 84)), ("classifier.2.bias", (10,))]


def lenet_entry(resize=32):
    """The upstream entry: 10 classes, grey inputs normalised with mean 0.5 and std 0.25, resized to ``resize``
    before the 32x32 centre crop."""
    return Upstream(source="torchvision", name="lenet_test", model="lenet5",
                    mapping=torch_rule(LENET_NAMES.get), signature=("features.0.weight", "classifier.2.weight"),
                    preprocessing={**imagenet(32, resize, mean=(0.5,), std=(0.25,))}, classes=10,
                    head=("classifier.2.*",), top=("classifier.*",))


@contextlib.contextmanager
def registered(upstream):
    _catalog.upstreams()  # the families first, so the entry is removed cleanly
    _catalog.register_upstream(upstream)
    try:
        yield upstream
    finally:
        del _catalog._CATALOG[upstream.key]


@pytest.fixture
def lenet_upstream():
    with registered(lenet_entry()) as upstream:
        yield upstream


@pytest.fixture
def lenet_file(tmp_path):
    return write_safetensors(synthetic.checkpoint(LENET_MANIFEST), str(tmp_path / "lenet.safetensors"))
