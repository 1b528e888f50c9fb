"""Reusable blocks shared by the model families."""

from keras_cnn.layers.conv import conv_bn_act
from keras_cnn.layers.normalization import LocalResponseNormalization

__all__ = ["LocalResponseNormalization", "conv_bn_act"]
