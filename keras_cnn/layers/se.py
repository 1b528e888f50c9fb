"""Squeeze-and-excitation (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018), seed 003 §3.6."""

import keras

from keras_cnn import _validate


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


def check_reduction(reduction, narrowest, where="block"):
    """Return ``reduction`` if it is None (no SE blocks) or an integer in ``[1, narrowest]``.

    ``narrowest`` is the fewest channels any SE block of the model sees, so every block keeps at least one
    squeeze channel (``channels // reduction >= 1``) instead of a silently clamped one.
    """
    if reduction is None:
        return None
    reduction = _validate.check_int("se_reduction", reduction, minimum=1)
    if reduction > narrowest:
        raise ValueError(f"se_reduction must be at most {narrowest} (the narrowest {where}'s channels) or None; "
                         f"received {reduction}.")
    return reduction
