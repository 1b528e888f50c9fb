"""Reusable blocks shared by the model families."""

from keras_cnn.layers.channel_shuffle import ChannelShuffle, ChannelSplit
from keras_cnn.layers.concat_bn_relu_conv import ConcatBNReLUConv
from keras_cnn.layers.conv import conv_bn_act
from keras_cnn.layers.drop_path import DropPath
from keras_cnn.layers.normalization import LocalResponseNormalization
from keras_cnn.layers.pooling import CeilModeMaxPooling2D, DepthwiseAveragePooling2D, PaddedMaxPooling2D
from keras_cnn.layers.residual import StochasticDepth, ZeroPadChannels
from keras_cnn.layers.se import squeeze_excite
from keras_cnn.layers.window_conv import WindowConv2D

__all__ = ["CeilModeMaxPooling2D", "ChannelShuffle", "ChannelSplit", "ConcatBNReLUConv", "DropPath",
           "LocalResponseNormalization", "conv_bn_act", "squeeze_excite"]
__all__ += ["DepthwiseAveragePooling2D", "PaddedMaxPooling2D", "StochasticDepth", "WindowConv2D", "ZeroPadChannels"]
