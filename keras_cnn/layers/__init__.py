"""Reusable blocks shared by the model families."""

from keras_cnn.layers.conv import conv_bn_act
from keras_cnn.layers.drop_path import DropPath
from keras_cnn.layers.normalization import LocalResponseNormalization
from keras_cnn.layers.se import squeeze_excite

__all__ = ["DropPath", "LocalResponseNormalization", "conv_bn_act", "squeeze_excite"]
