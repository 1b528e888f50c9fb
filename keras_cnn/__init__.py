"""keras_cnn: the classic image-classification CNNs for Keras 3, faithful to their papers.

``keras_cnn.build("vgg16")`` makes a model; ``keras_cnn.list_models()`` lists the names; ``keras_cnn.to_fcn(model)``
turns a dense head into convolutions for dense evaluation (``keras_cnn.evaluation``); ``keras_cnn.model_config``
and ``keras_cnn.rebuild`` read a model's build arguments and make weight-sharing variants of it;
``keras_cnn.build(name, weights=CHECKPOINT)`` loads torchvision, timm and keras.applications checkpoints
(``keras_cnn.weights``), and ``keras_cnn.preprocess_input`` prepares images as the checkpoint expects.

The public names are loaded on first use (PEP 562), so ``import keras_cnn`` (and ``keras-cnn --help``) does not
import TensorFlow; the first ``keras_cnn.build`` does, and registers every family.
"""

import importlib
import importlib.util
from typing import TYPE_CHECKING

from keras_cnn import _on_keras

__version__ = "0.3.0"

# public name -> the module that defines it (None: the name is that submodule itself)
_EXPORTS = {
    "CNNModel": "keras_cnn.model",
    "inference_model": "keras_cnn.model",
    "model_config": "keras_cnn.model",
    "rebuild": "keras_cnn.model",
    "build": "keras_cnn.registry",
    "list_models": "keras_cnn.registry",
    "to_fcn": "keras_cnn.fcn",
    "feature_extractor": "keras_cnn.features",
    "profile": "keras_cnn.profile",
    "recalibrate_batch_norm": "keras_cnn.batch_norm",
    "preprocess_input": "keras_cnn.weights",
    "weights": None,
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # what static tools (IDEs, mkdocstrings) see; at run time __getattr__ loads these on demand
    from keras_cnn import weights
    from keras_cnn.batch_norm import recalibrate_batch_norm
    from keras_cnn.features import feature_extractor
    from keras_cnn.fcn import to_fcn
    from keras_cnn.model import CNNModel, inference_model, model_config, rebuild
    from keras_cnn.profile import profile
    from keras_cnn.registry import build, list_models
    from keras_cnn.weights import preprocess_input


_on_keras.install()  # keras.saving.load_model finds keras_cnn's layers and CNNModel without keras_cnn.build first


def __getattr__(name):
    if name not in _EXPORTS:
        return _submodule(name)
    module = _EXPORTS[name]
    value = importlib.import_module(f"keras_cnn.{name}" if module is None else module)
    if module is not None:
        value = getattr(value, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def _submodule(name):
    """``keras_cnn.export`` and the like, as when the package imported them eagerly."""
    if name.startswith("__") or importlib.util.find_spec(f"keras_cnn.{name}") is None:
        raise AttributeError(f"module 'keras_cnn' has no attribute {name!r}")
    return importlib.import_module(f"keras_cnn.{name}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
