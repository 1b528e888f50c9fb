"""keras_cnn: the classic image-classification CNNs for Keras 3, faithful to their papers.

``keras_cnn.build("vgg16")`` makes a model; ``keras_cnn.list_models()`` lists the names; ``keras_cnn.to_fcn(model)``
turns a dense head into convolutions for dense evaluation (``keras_cnn.evaluation``); ``keras_cnn.model_config``
and ``keras_cnn.rebuild`` read a model's build arguments and make weight-sharing variants of it;
``keras_cnn.build(name, weights=CHECKPOINT)`` loads torchvision, timm and keras.applications checkpoints
(``keras_cnn.weights``), and ``keras_cnn.preprocess_input`` prepares images as the checkpoint expects.
"""

from keras_cnn import models  # noqa: F401  (registers every family)
from keras_cnn.batch_norm import recalibrate_batch_norm
from keras_cnn.features import feature_extractor
from keras_cnn.fcn import to_fcn
from keras_cnn.model import CNNModel, inference_model, model_config, rebuild
from keras_cnn.profile import profile
from keras_cnn.registry import build, list_models
from keras_cnn import weights  # upstream checkpoints: keras_cnn.weights.upstreams(), checkpoint_info(), ...
from keras_cnn.weights import preprocess_input

__version__ = "0.3.0"

__all__ = ["CNNModel", "__version__", "build", "inference_model", "list_models", "model_config", "rebuild", "to_fcn"]
__all__ += ["profile"]
__all__ += ["feature_extractor"]
__all__ += ["preprocess_input", "weights"]
__all__ += ["recalibrate_batch_norm"]
