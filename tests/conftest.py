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


def model_params(pattern="*"):
    """Registered names matching ``pattern`` as params grouped per model, so one xdist worker builds each."""
    return [pytest.param(n, id=n, marks=pytest.mark.xdist_group(n)) for n in keras_cnn.list_models(pattern)]
