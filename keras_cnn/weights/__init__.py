"""Trained weights from the ecosystem: torchvision, timm and keras.applications checkpoints as keras_cnn weights.

``keras_cnn.build("resnet50", weights="resnet50-11ad3fa6.pth")`` reads the file (PyTorch zip checkpoints without
torch, ``.safetensors``, keras.applications' legacy ``.h5``), recognises which upstream model it holds
(:func:`upstreams` lists them), builds the model with the options that checkpoint needs (PyTorch's symmetric
padding, its BatchNorm epsilon, ...), maps every tensor by name rules of the family (never by position), checks
that every tensor on both sides is accounted for with the right shape, and only then assigns. The checkpoint's
preprocessing travels with the model (:func:`checkpoint_info`, :func:`preprocess_input`).

Each family's rules live in :mod:`keras_cnn.weights.families`; tests compare the converted models' logits with
the upstream libraries' on the same weights (docs/weights.md).
"""

from keras_cnn.weights._catalog import Upstream, get_upstream, register_upstream, upstreams
from keras_cnn.weights._convert import load_checkpoint
from keras_cnn.weights._readers import Checkpoint, read_checkpoint, write_safetensors
from keras_cnn.weights._preprocess import checkpoint_info, preprocess_input

__all__ = ["Checkpoint", "Upstream", "checkpoint_info", "get_upstream", "load_checkpoint", "preprocess_input",
           "read_checkpoint", "register_upstream", "upstreams", "write_safetensors"]
