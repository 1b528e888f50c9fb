"""Squeeze-and-excitation (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018), seed 003 §3.6."""

import keras


def squeeze_excite(x, squeeze_channels, *, name, activation="relu", gate="sigmoid"):
    """Channel attention: global average pool, 1x1 reduce + ``activation``, 1x1 expand + ``gate``, rescale.

    The two fully connected layers of the paper are 1x1 convolutions on the pooled 1x1 map (identical
    parameters, with biases) so the block stays 4-D for TFLite. Callers choose ``squeeze_channels``: C/r for
    SENet (r=16), make_divisible(C/4, 8) for MobileNetV3, in_channels*0.25 for EfficientNet. ``gate`` is
    "sigmoid" or "hard_sigmoid" (MobileNetV3). Layers: ``name_squeeze``, ``name_reduce``, ``name_expand``,
    ``name_excite``.
    """
    channels = x.shape[-1]
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = keras.layers.Conv2D(squeeze_channels, 1, activation=activation, name=f"{name}_reduce")(s)
    s = keras.layers.Conv2D(channels, 1, activation=gate, name=f"{name}_expand")(s)
    return keras.layers.Multiply(name=f"{name}_excite")([x, s])
