"""Trainable parameter counts at full size for every registered model, each against a named source.

Every model in keras_cnn.list_models() must have a row in a tests/counts/<family>.py table: a family is not done until its counts are checked.
"""

import importlib
import pkgutil

import numpy as np
import pytest

import keras_cnn
from tests import counts
from tests.conftest import model_params


def _collect():
    """Merge the ``REFERENCE`` table of every module in tests/counts/ (one module per family)."""
    merged = {}
    for module in pkgutil.iter_modules(counts.__path__):
        table = importlib.import_module(f"{counts.__name__}.{module.name}").REFERENCE
        clash = set(merged) & set(table)
        assert not clash, f"{module.name} repeats {clash}"
        merged.update(table)
    return merged


REFERENCE = _collect()


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_every_model_has_a_reference_count():
    missing = sorted(set(keras_cnn.list_models()) - set(REFERENCE))
    assert not missing, f"no reference parameter count for {missing}"


@pytest.mark.parametrize("name", model_params())
def test_full_size_parameter_count(name):
    kwargs, expected, source = REFERENCE[name]
    model = keras_cnn.build(name, **kwargs)
    assert trainable_count(model) == expected, source
