"""Shared test set-up: quiet TensorFlow, one small model per registered name, cached per worker."""

import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras_cnn  # noqa: E402
from keras_cnn import registry  # noqa: E402

SMALL_CLASSES = 3


def small_size(name):
    """The smallest spatial size the model accepts, but at least 32: fast, yet every stage runs."""
    return max(registry.get(name).min_input, 32)


@functools.lru_cache(maxsize=4)
def small_model(name, channels=3):
    """``name`` built at its small size with a few classes (cached: several tests share it)."""
    size = small_size(name)
    return keras_cnn.build(name, input_shape=(size, size, channels), classes=SMALL_CLASSES)


def random_images(model, batch=2, seed=0):
    shape = (batch, *model.input_shape[1:])
    return np.random.default_rng(seed).uniform(0.0, 1.0, shape).astype("float32")


# Deeper or wider rows of a table whose builder code a shallower sibling in the harness already runs: their
# harness runs carry the slow mark (``make test-all``); their full-size parameter counts run in CI regardless.
HARNESS_SLOW = {
    "resnet101", "resnet152", "resnet101_v2", "resnet152_v2", "resnet200_v2", "resnet1202", "resnet1001_v2",
    "resnext101_32x4d", "resnext101_32x8d", "resnext101_64x4d", "se_resnet101", "se_resnet152",
    "se_resnext101_32x4d", "densenet169", "densenet201", "densenet264", "densenet_bc_250", "densenet_bc_190",
    "efficientnet_b2", "efficientnet_b3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6",
}


def model_params(pattern="*", *, harness=False):
    """Registered names matching ``pattern`` as params grouped per model, so one xdist worker builds each;
    ``harness=True`` marks the HARNESS_SLOW rows slow."""
    return [pytest.param(n, id=n, marks=[pytest.mark.xdist_group(n)]
                         + ([pytest.mark.slow] if harness and n in HARNESS_SLOW else []))
            for n in keras_cnn.list_models(pattern)]
