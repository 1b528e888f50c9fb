"""DenseNet (Huang, Liu, van der Maaten & Weinberger, "Densely Connected Convolutional Networks", CVPR 2017).

Seed 003 §8 (and 002, 004 §7.7). Every layer of a dense block sees the concatenation of the block input and of
all earlier layers' outputs (``growth_rate`` = k maps each); transitions (BN-ReLU-1x1 conv-2x2 average pool)
between blocks halve the resolution and compress the channels by θ. The ImageNet models are DenseNet-BC with
k = 32 (48 for DenseNet-161) and θ = 0.5 (paper Table 1); the CIFAR models are DenseNet-BC with three blocks
of (L - 4) / 6 layers on 32x32 inputs (paper Table 2). The layout follows the authors' Lua code
(github.com/liuzhuang13/DenseNet) and torchvision: convolutions have no bias (each consumer normalises its
input), the first convolution has 2k maps, transitions keep floor(θ·m) maps.

Spec and options (CONTRIBUTING.md): a variant's architecture is its :class:`DenseNetSpec` row, B and C included
(DenseNet and DenseNet-BC are separate rows of Table 2); the options are dropout, ``memory_efficient=True``,
the memory-efficient implementation of seed §8.4 (see :class:`keras_cnn.layers.ConcatBNReLUConv`), and
``bn_epsilon``, the batch-normalisation epsilon of the checkpoint loaded (1e-5 as torchvision and timm;
keras.applications' DenseNets use 1.001e-5).

Padding: the 7x7/2 stem convolution and the 3x3/2 max pooling pad 3 and 1 pixels on every side (the Lua/Torch
model, torchvision, timm and keras.applications alike), the 3x3 convolutions of the dense layers are stride 1 and
the transitions pool 2x2/2 without padding, so no TensorFlow "same" asymmetry arises and no padding option is
needed: every upstream checkpoint computes the same function here.
"""

import dataclasses

import keras

from keras_cnn import _validate
from keras_cnn.layers import ConcatBNReLUConv, conv_bn_act
from keras_cnn.layers.conv import BN_EPSILON
from keras_cnn.layers.normalization import BatchNormalization
from keras_cnn.registry import register

STEMS = ("imagenet", "cifar")


def _check_block_config(block_config):
    if not isinstance(block_config, tuple) or not block_config:
        raise TypeError(f"block_config must be a non-empty tuple of layers per dense block, e.g. (6, 12, 24, 16); "
                        f"received {block_config!r}.")
    for i, n in enumerate(block_config):
        _validate.check_int(f"block_config[{i}]", n, minimum=1)


@dataclasses.dataclass(frozen=True)
class DenseNetSpec:
    """One variant: a row of the paper's Table 1 (ImageNet, DenseNet-BC) or Table 2 (CIFAR)."""

    block_config: tuple  # layers per dense block
    growth_rate: int  # k, the maps each layer adds
    stem: str = "imagenet"  # "imagenet": 7x7/2 conv, BN, ReLU, 3x3/2 max pool; "cifar": one 3x3 conv
    init_features: int | None = None  # maps of the first convolution; None: 2k (the non-BC CIFAR nets: 16)
    compression: float = 0.5  # θ of the transitions, in (0, 1] (C; 1 = DenseNet without C)
    bottleneck_width: int = 4  # B: a 1x1 conv to bottleneck_width·k maps before each 3x3; 0 = without B

    def __post_init__(self):
        _check_block_config(self.block_config)
        _validate.check_int("growth_rate", self.growth_rate, minimum=1)
        _validate.check_choice("stem", self.stem, STEMS)
        if self.init_features is not None:
            _validate.check_int("init_features", self.init_features, minimum=1)
        if _validate.check_float("compression", self.compression, minimum=0.0, maximum=1.0) == 0.0:
            raise ValueError(f"compression must be in (0, 1] (θ of the transitions; 1 = no compression); "
                             f"received {self.compression!r}.")
        _validate.check_int("bottleneck_width", self.bottleneck_width, minimum=0)


# The paper's variants. Depth L counts the convolution and fully connected layers: ImageNet 2·sum(blocks) + 1 stem
# conv + 3 transitions + 1 classifier (Table 1's "264" has 265 by this count; its blocks are used as printed),
# CIFAR-BC L = 6n + 4 for n layers a block.
VARIANTS = {
    "densenet121": DenseNetSpec((6, 12, 24, 16), 32),  # Table 1, k = 32
    "densenet169": DenseNetSpec((6, 12, 32, 32), 32),
    "densenet201": DenseNetSpec((6, 12, 48, 32), 32),
    "densenet264": DenseNetSpec((6, 12, 64, 48), 32),
    "densenet161": DenseNetSpec((6, 12, 36, 24), 48),  # k = 48 (the authors' release)
    "densenet_bc_100": DenseNetSpec((16,) * 3, 12, "cifar"),  # Table 2, DenseNet-BC rows
    "densenet_bc_250": DenseNetSpec((41,) * 3, 24, "cifar"),
    "densenet_bc_190": DenseNetSpec((31,) * 3, 40, "cifar"),
}


def densenet(x, head, *, spec, dropout=0.0, memory_efficient=False, bn_epsilon=BN_EPSILON):
    """DenseNet / DenseNet-B / -C / -BC (Huang et al., CVPR 2017; seed 003 §8); ``spec`` is a
    :class:`DenseNetSpec` row.

    Options: ``dropout`` after every convolution but the first, as the paper's CIFAR/SVHN runs without
    augmentation (0.2); ``memory_efficient`` recomputes the concatenation, BN and ReLU in front of every
    convolution that reads a concatenation in the backward pass instead of storing them (Pleiss et al. 2017;
    same weights, outputs and gradients); ``bn_epsilon`` is the epsilon of every batch normalisation (1e-5, as
    the Torch models; 1.001e-5 for keras.applications' checkpoints, set by ``keras_cnn.build(weights=...)``).
    """
    dropout = _validate.check_rate("dropout", dropout)
    _validate.check_bool("memory_efficient", memory_efficient)
    bn_epsilon = _check_epsilon(bn_epsilon)
    blocks = spec.block_config
    _check_size(x, spec.stem, len(blocks))

    unit = _Unit(dropout, memory_efficient, bn_epsilon)
    x = _stem(x, spec.stem, 2 * spec.growth_rate if spec.init_features is None else spec.init_features, bn_epsilon)
    for block, layers in enumerate(blocks, start=1):
        maps = _dense_block(x, block, layers, spec.growth_rate, spec.bottleneck_width, unit)
        if block < len(blocks):
            features = int(sum(m.shape[-1] for m in maps) * spec.compression)
            x = unit.bn_relu_conv(maps, features, 1, f"transition{block}", "")
            x = keras.layers.AveragePooling2D(2, strides=2, name=f"transition{block}_pool")(x)
    x = _concat(maps, f"block{len(blocks)}_layer{blocks[-1]}_concat")
    x = BatchNormalization(epsilon=bn_epsilon, name="final_bn")(x)
    x = keras.layers.Activation("relu", name="final_relu")(x)
    return head.pooled(x)


class _Unit:
    """BN → ReLU → conv (→ dropout) on a block's maps, plain or through ``ConcatBNReLUConv``."""

    def __init__(self, dropout, memory_efficient, epsilon):
        self.dropout = dropout
        self.memory_efficient = memory_efficient
        self.epsilon = epsilon

    def bn_relu_conv(self, maps, filters, kernel, prefix, suffix, recompute=True):
        """Layers ``<prefix>_bn<suffix>``, ``_relu<suffix>``, ``_conv<suffix>`` and ``_dropout<suffix>``.

        In the memory-efficient mode ``maps`` are the pieces of a concatenation and, unless ``recompute`` is
        False (the 3x3 half of a bottleneck layer), one ``<prefix>_concat_conv<suffix>`` replaces the first three.
        """
        if self.memory_efficient and recompute:
            x = ConcatBNReLUConv(filters, kernel, epsilon=self.epsilon, name=f"{prefix}_concat_conv{suffix}")(maps)
        else:
            (x,) = maps
            x = BatchNormalization(epsilon=self.epsilon, name=f"{prefix}_bn{suffix}")(x)
            x = keras.layers.Activation("relu", name=f"{prefix}_relu{suffix}")(x)
            x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{prefix}_conv{suffix}")(x)
        if self.dropout:
            x = keras.layers.Dropout(self.dropout, name=f"{prefix}_dropout{suffix}")(x)
        return x


def _dense_block(x, block, layers, growth_rate, width, unit):
    """The block's maps: the running concatenation ``<prefix>_concat`` of each layer (plain, as
    keras.applications), or the block input and every layer's k new maps, left for the consumer to
    concatenate (memory-efficient, so that no concatenation has to be stored)."""
    maps = [x]
    for layer in range(1, layers + 1):
        prefix = f"block{block}_layer{layer}"
        if width:
            y = unit.bn_relu_conv(maps, width * growth_rate, 1, prefix, "1")
            y = unit.bn_relu_conv([y], growth_rate, 3, prefix, "2", recompute=False)
        else:
            y = unit.bn_relu_conv(maps, growth_rate, 3, prefix, "1")
        maps = maps + [y] if unit.memory_efficient else [_concat([*maps, y], f"{prefix}_concat")]
    return maps


def _concat(pieces, name):
    return pieces[0] if len(pieces) == 1 else keras.layers.Concatenate(name=name)(pieces)


def _check_epsilon(bn_epsilon):
    if _validate.check_float("bn_epsilon", bn_epsilon, minimum=0.0) == 0.0:
        raise ValueError(f"bn_epsilon must be > 0 (it keeps the normalisation finite on constant channels); "
                         f"received {bn_epsilon!r}.")
    return float(bn_epsilon)


def _stem(x, stem, features, epsilon):
    if stem == "cifar":
        return keras.layers.Conv2D(features, 3, padding="same", use_bias=False, name="conv1")(x)
    # explicit symmetric padding as in the Lua/Torch model (TF "same" would pad 2 before and 3 after)
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = conv_bn_act(x, features, 7, strides=2, padding="valid", batch_norm=True, epsilon=epsilon, name="conv1")
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)  # after ReLU, zero padding acts as -inf padding
    return keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)


def _min_size(stem, blocks):
    """Smallest input for which the last block still gets a 1x1 map after ``blocks - 1`` halvings."""
    last = 2 ** (blocks - 1)
    return 4 * last - 3 if stem == "imagenet" else last  # 7x7/2 conv (pad 3) then 3x3/2 pool (pad 1)


def _check_size(x, stem, blocks):
    minimum = _min_size(stem, blocks)
    small = [d for d in x.shape[1:3] if d is not None and d < minimum]
    if small:
        raise ValueError(f"input height and width must be at least {minimum} for {blocks} dense blocks with the "
                         f"{stem!r} stem; received input shape {tuple(x.shape[1:])}.")


for _name, _spec in VARIANTS.items():
    _cifar = _spec.stem == "cifar"
    register(_name, family="densenet", default_input=(32, 32, 3) if _cifar else (224, 224, 3),
             min_input=_min_size(_spec.stem, len(_spec.block_config)), spec=_spec)(densenet)
