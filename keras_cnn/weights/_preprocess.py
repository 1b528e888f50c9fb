"""The preprocessing a checkpoint was trained with, as recorded with the model that carries its weights."""

import numpy as np


def checkpoint_info(model):
    """``{"source", "upstream", "file", "preprocessing"}`` of the checkpoint ``model``'s weights came from (through
    ``keras.saving.load_model`` too), or None for a model not loaded from one."""
    from keras_cnn.model import weights_info

    return weights_info(model)


def _record(model_or_name, source=None):
    if isinstance(model_or_name, str):
        from keras_cnn.weights._catalog import upstreams

        found = upstreams(model=model_or_name, source=source)
        if not found:
            raise ValueError(f"no upstream checkpoint is known for model {model_or_name!r}"
                             + (f" from {source!r}" if source else "") + ".")
        return found[0].preprocessing
    info = checkpoint_info(model_or_name)
    if info is None:
        raise ValueError(f"model {model_or_name.name!r} was not loaded from an upstream checkpoint, so it has no "
                         "recorded preprocessing; pass a model name or a model built with weights=PATH.")
    return info["preprocessing"]


def preprocess_input(model_or_name, images, *, source=None):
    """Images in [0, 255] (uint8 or float, ``(..., H, W, 3)`` RGB, already at the model's input size) normalised
    as the checkpoint expects: ``(x / 255 - mean) / std`` per channel. ``model_or_name`` is a model built with
    ``weights=PATH`` or a registered name (its first known checkpoint, or the one of ``source``)."""
    record = _record(model_or_name, source)
    x = np.asarray(images, dtype=np.float32) / 255.0
    if x.shape[-1] != 3:
        raise ValueError(f"images must be RGB with 3 channels last; received shape {x.shape}.")
    return (x - np.asarray(record["mean"], np.float32)) / np.asarray(record["std"], np.float32)
