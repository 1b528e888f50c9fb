"""keras_cnn: the classic image-classification CNNs for Keras 3, faithful to their papers.

``keras_cnn.build("vgg16")`` makes a model; ``keras_cnn.list_models()`` lists the names; ``keras_cnn.to_fcn(model)``
turns a dense head into convolutions for dense evaluation (``keras_cnn.evaluation``).
"""

from keras_cnn import models  # noqa: F401  (registers every family)
from keras_cnn.fcn import to_fcn
from keras_cnn.registry import build, list_models

__version__ = "0.1.0"

__all__ = ["__version__", "build", "list_models", "to_fcn"]
