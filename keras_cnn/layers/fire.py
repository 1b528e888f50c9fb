"""SqueezeNet's Fire module (Iandola et al. 2016, §3.2; seed 003 §9.1.1.1)."""

import keras


def fire(x, squeeze, expand_1x1, expand_3x3, *, name, kernel_initializer="he_uniform"):
    """Squeeze (1x1, ``s1x1`` maps) then expand (1x1 and 3x3 side by side, concatenated), each with ReLU.

    The 3x3 expand is padded by one pixel so both expand outputs have the same size (paper §3.3). Layers:
    ``name_squeeze1x1``, ``name_expand1x1``, ``name_expand3x3``, ``name_concat`` (Caffe/torchvision names).
    ``kernel_initializer`` defaults to He (torchvision's ``kaiming_uniform_``): SqueezeNet has no batch
    normalisation, and with Keras' Glorot default the signal shrinks about 2x per layer, leaving near-zero class
    maps that the ReLU classifier can switch off for good.
    """

    def conv(inputs, filters, kernel, suffix):
        return keras.layers.Conv2D(filters, kernel, padding="same", activation="relu",
                                   kernel_initializer=kernel_initializer, name=f"{name}_{suffix}")(inputs)

    x = conv(x, squeeze, 1, "squeeze1x1")
    return keras.layers.Concatenate(name=f"{name}_concat")(
        [conv(x, expand_1x1, 1, "expand1x1"), conv(x, expand_3x3, 3, "expand3x3")])
