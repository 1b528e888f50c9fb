"""Turn a classifier's dense head into convolutions for dense (sliding-window) evaluation.

Seed 003 §2.5 and Sermanet et al. (OverFeat, 2014) / Simonyan & Zisserman (2015, §3.2): a fully connected layer
that reads a k×k×C map is a k×k convolution with the same weights, and later fully connected layers are 1×1
convolutions. The converted network accepts any input size at least as large as the original and gives a map
of class posteriors, one per window, at the network's total stride.
"""

import keras
import numpy as np

from keras_cnn import _compat, _validate
from keras_cnn.layers import WindowConv2D

# Layers that act on each position's channel vector alone, so they carry over to maps unchanged.
_POSITIONWISE = (keras.layers.Dropout, keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU,
                 keras.layers.BatchNormalization, keras.layers.Softmax)


def to_fcn(model):
    """Return a fully convolutional copy of ``model`` with input shape ``(None, None, channels)``.

    Flatten heads: the first ``Dense`` after ``Flatten`` becomes a k×k ``Conv2D`` whose kernel is the Dense
    kernel reshaped in channels-last flatten order; later ``Dense`` layers become 1×1 convolutions. Global
    average pooling heads: the ``Dense`` layers after the pooling become 1×1 convolutions before it (the two
    are linear, so they commute), giving class score maps. Dropout, activations and batch normalisation are
    kept; the classifier activation acts over the channel axis at each position. Weights are copied, so the
    result does not share variables with ``model``. A layer that cannot be converted raises ``ValueError``
    naming it.
    """
    _validate.check_model(model)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"to_fcn needs a model with one input and one output; {model.name!r} has {len(model.inputs)} "
            f"input(s) and {len(model.outputs)} output(s) (strip auxiliary classifiers first)."
        )
    pooling, head = _split_head(model)
    trunk = keras.Model(model.inputs[0], pooling.input)
    image = keras.Input((None, None, model.inputs[0].shape[-1]), name=model.inputs[0].name)
    fcn_trunk = keras.models.clone_model(trunk, input_tensors=image)
    fcn_trunk.set_weights(trunk.get_weights())
    x = fcn_trunk.output
    window = tuple(pooling.input.shape[1:3]) if isinstance(pooling, keras.layers.Flatten) else (1, 1)
    for layer in head:
        x = _convert(layer, window)(x)
        if isinstance(layer, keras.layers.Dense):
            window = (1, 1)
    return keras.Model(image, x, name=f"{model.name}_fcn")


def _split_head(model):
    """Walk back from the output to the Flatten / GlobalAveragePooling2D; return it and the layers after it."""
    head = []
    tensor = model.outputs[0]
    while True:
        layer, inputs = _compat.producer(tensor)
        if isinstance(layer, (keras.layers.Flatten, keras.layers.GlobalAveragePooling2D)):
            if isinstance(layer, keras.layers.GlobalAveragePooling2D) and layer.keepdims:
                raise ValueError(f"layer {layer.name!r}: GlobalAveragePooling2D(keepdims=True) is not supported.")
            return layer, head[::-1]
        if not head and len(tensor.shape) == 4:
            raise ValueError(
                f"to_fcn: model {model.name!r} is already fully convolutional: its output, layer {layer.name!r} "
                f"({type(layer).__name__}), is a feature map of shape {tuple(tensor.shape)}, with no Flatten or "
                "GlobalAveragePooling2D classifier head to convert. Pass the model with its classifier "
                "(include_top=True), or use this one as it is."
            )
        if not isinstance(layer, (keras.layers.Dense, *_POSITIONWISE)):
            raise ValueError(
                f"to_fcn cannot convert layer {layer.name!r} ({type(layer).__name__}) in the head of "
                f"{model.name!r}: between the Flatten/GlobalAveragePooling2D and the output only Dense, Dropout, "
                "activation and BatchNormalization layers can be turned into convolutions."
            )
        if len(inputs) != 1:
            raise ValueError(f"to_fcn: layer {layer.name!r} in the head has {len(inputs)} inputs; expected one.")
        head.append(layer)
        tensor = inputs[0]


def _convert(layer, window):
    """The map-level equivalent of one head layer, with its weights copied."""
    if not isinstance(layer, keras.layers.Dense):
        clone = layer.__class__.from_config(layer.get_config())
        clone.build((None, None, None, layer.input.shape[-1]))
        clone.set_weights(layer.get_weights())
        return clone
    kernel, *bias = layer.get_weights()
    channels = kernel.shape[0] // int(np.prod(window))
    if channels * int(np.prod(window)) != kernel.shape[0]:
        raise ValueError(f"layer {layer.name!r}: kernel rows {kernel.shape[0]} do not match a {window} window.")
    conv_class = WindowConv2D if window != (1, 1) else keras.layers.Conv2D  # a faster k×k, same result
    conv = conv_class(layer.units, window, activation=layer.activation, use_bias=layer.use_bias, name=layer.name)
    conv.build((None, None, None, channels))
    # Flatten of an (h, w, c) map is row-major, so row (i * w + j) * c + k of the kernel is tap (i, j, k).
    conv.set_weights([kernel.reshape(*window, channels, layer.units), *bias])
    return conv


def total_stride(model):
    """Product of the strides of the convolution and pooling layers: the step between FCN map positions."""
    stride = 1
    for layer in model.layers:
        steps = getattr(layer, "strides", None)
        if steps is not None:
            steps = (steps, steps) if isinstance(steps, int) else tuple(steps)
            if steps[0] != steps[1]:
                raise ValueError(f"layer {layer.name!r} has unequal strides {steps}; the FCN grid is not square.")
            stride *= steps[0]
    return stride
