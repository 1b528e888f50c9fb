"""The one input/head path shared by every family.

``make_input`` validates ``input_shape``/``input_tensor`` against the model's default and minimum size;
``Head`` turns the last feature map into the model output the same way for every family: with
``include_top=False`` it applies ``pooling``; with ``include_top=True`` it builds the family's classifier kind
(flatten + fully connected layers, global pooling + dense, or a convolutional classifier) ending in a layer
named ``predictions``.
"""

import dataclasses
import os

import keras

from keras_cnn import _validate

POOLINGS = (None, "avg", "max")


@dataclasses.dataclass(frozen=True)
class Head:
    """Validated head arguments and the classifier kinds built from them."""

    include_top: bool
    pooling: str | None
    classes: int
    classifier_activation: object

    @classmethod
    def create(cls, include_top, pooling, classes, classifier_activation):
        """Validate the ``keras.applications``-style head arguments."""
        _validate.check_bool("include_top", include_top)
        _validate.check_choice("pooling", pooling, POOLINGS)
        if include_top and pooling is not None:
            raise ValueError(
                f"pooling applies only when include_top=False (the classifier has its own pooling); "
                f"received pooling={pooling!r} with include_top=True."
            )
        _validate.check_int("classes", classes, minimum=1)
        _validate.check_activation("classifier_activation", classifier_activation, allow_none=True)
        return cls(include_top, pooling, int(classes), classifier_activation)

    def pool(self, x):
        """Feature output for ``include_top=False``: the map itself, or its global average/max."""
        if self.pooling == "avg":
            return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if self.pooling == "max":
            return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
        return x

    def fully_connected(self, x, hidden=(), *, activation="relu", dropout=0.0, flatten=True):
        """Flatten (or global-average) the map, then ``hidden`` = ``((name, units), ...)`` dense layers.

        Each hidden layer is followed by dropout named ``<name>_dropout`` when ``dropout > 0``; the last
        layer is ``Dense(classes, name="predictions")``.
        """
        if not self.include_top:
            return self.pool(x)
        if flatten:
            x = keras.layers.Flatten(name="flatten")(x)
        else:
            x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        for layer_name, units in hidden:
            x = keras.layers.Dense(units, activation=activation, name=layer_name)(x)
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"{layer_name}_dropout")(x)
        return self.classifier(x)

    def pooled(self, x, *, dropout=0.0):
        """Global average pooling, optional dropout (``head_dropout``), then the classifier: the usual head
        of GoogLeNet, ResNet, DenseNet, MobileNet, EfficientNet and their kin."""
        if not self.include_top:
            return self.pool(x)
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="head_dropout")(x)
        return self.classifier(x)

    def classifier(self, x):
        """The final ``Dense(classes)`` named ``predictions`` with the classifier activation."""
        return keras.layers.Dense(self.classes, activation=self.classifier_activation, name="predictions")(x)

    def convolutional(self, x, *, activation=None, dropout=0.0):
        """Classifier as a 1x1 convolution to ``classes`` maps, then global average pooling (NiN, SqueezeNet).

        ``activation`` is applied to the class maps before pooling (NiN's ReLU); ``dropout`` comes before the
        convolution. The output layer ``predictions`` is the classifier activation.
        """
        if not self.include_top:
            return self.pool(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="classifier_dropout")(x)
        x = keras.layers.Conv2D(self.classes, 1, activation=activation, name="classifier_conv")(x)
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return keras.layers.Activation(self.classifier_activation or "linear", name="predictions")(x)


def check_weights(weights):
    """``weights`` is None or the path of an existing weights file: a Keras ``.weights.h5`` or an upstream
    checkpoint (``.pth``/``.pt``, ``.safetensors``, keras.applications ``.h5``, ``.npz``; see
    :mod:`keras_cnn.weights`). Nothing pretrained is bundled or downloaded."""
    if weights is None:
        return None
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights must be None or a path to a weights file; received {weights!r}.")
    path = os.fspath(weights)
    if path in ("imagenet",):
        raise ValueError(
            "weights='imagenet' is not downloaded by keras_cnn: pass the path of a torchvision, timm or "
            "keras.applications checkpoint (see keras_cnn.weights.upstreams() and the coverage table in "
            "docs/weights.md); "
            f"received {weights!r}."
        )
    if not os.path.isfile(path):
        raise ValueError(f"weights file {path!r} does not exist.")
    return path


def make_input(entry, input_shape, input_tensor, include_top):
    """Return ``(model_inputs, image_tensor)`` after validating the input against ``entry``'s limits."""
    if input_tensor is not None and not keras.backend.is_keras_tensor(input_tensor):
        raise TypeError(
            f"input_tensor must be a Keras tensor (e.g. from keras.Input); received {type(input_tensor).__name__}."
        )
    tensor_shape = tuple(input_tensor.shape[1:]) if input_tensor is not None else None
    if input_shape is not None:
        shape = _check_shape(input_shape, "input_shape")
        if tensor_shape is not None and tensor_shape != shape:
            raise ValueError(
                f"input_shape {shape} does not match the shape of input_tensor {tensor_shape}; pass one of them."
            )
    elif tensor_shape is not None:
        shape = _check_shape(tensor_shape, "input_tensor")
    else:
        shape = entry.default_input
    _check_size(entry, shape, include_top)
    if input_tensor is None:
        image = keras.Input(shape=shape, name="image")
        return image, image
    sources = keras.utils.get_source_inputs(input_tensor)
    return (sources[0] if len(sources) == 1 else sources), input_tensor


def _check_shape(shape, arg):
    if not isinstance(shape, (tuple, list)) or len(shape) != 3:
        raise ValueError(f"{arg} must be a (height, width, channels) tuple (channels last); received {shape!r}.")
    height, width, channels = shape
    for label, dim in (("height", height), ("width", width)):
        if dim is not None:
            _validate.check_int(f"{arg} {label}", dim, minimum=1)
    if channels is None:
        raise ValueError(f"{arg} channels must be a known integer (channels last); received {tuple(shape)!r}.")
    _validate.check_int(f"{arg} channels", channels, minimum=1)
    return tuple(shape)


def _check_size(entry, shape, include_top):
    height, width, _ = shape
    if include_top and entry.fixed_input and (height is None or width is None):
        raise ValueError(
            f"Model {entry.name!r} flattens its last feature map into fully connected layers, so "
            f"include_top=True needs a fixed height and width; received input_shape={shape}. Pass a size "
            f"(default {entry.default_input[:2]}), use include_top=False, or convert the model to a fully "
            "convolutional one for variable sizes (dense evaluation)."
        )
    small = [d for d in (height, width) if d is not None and d < entry.min_input]
    if small:
        raise ValueError(
            f"input_shape {shape} is too small for model {entry.name!r}: height and width must be at least "
            f"{entry.min_input} (default input {entry.default_input})."
        )
