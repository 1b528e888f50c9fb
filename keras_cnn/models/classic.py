"""The classic family: LeNet-5, AlexNet, VGG A-E and Network in Network.

Each builder reads its variant row from a table that mirrors the paper's table (seed 003 §1-3, 004 NiN).
"""

import keras

from keras_cnn import _validate
from keras_cnn.layers import LocalResponseNormalization, conv_bn_act
from keras_cnn.registry import register

POOL_TYPES = {"avg": keras.layers.AveragePooling2D, "max": keras.layers.MaxPooling2D}


# LeNet-5 (LeCun et al., 1998), seed 003 table: C1 6@5x5, S2 2x2/2, C3 16@5x5, S4 2x2/2, C5 120@5x5, F6 84.
LENET5 = {"convs": (("c1", 6, "s2"), ("c3", 16, "s4")), "c5": 120, "f6": 84}


@register("lenet5", family="lenet", default_input=(32, 32, 1), min_input=32, fixed_input=True, spec=LENET5)
def lenet5(x, head, *, spec, activation="tanh", pool="avg"):
    """LeNet-5 (LeCun et al., "Gradient-based learning applied to document recognition", 1998).

    Options: ``activation`` ("tanh" as in the paper's squashing function, or e.g. "relu") and ``pool``
    ("avg" for the paper's subsampling, "max" for the modern variant). The RBF output layer is replaced by
    ``Dense(classes)`` and C3 is fully connected to S2 (the paper's partial connection table is not used).
    """
    _validate.check_activation("activation", activation)
    pool_layer = POOL_TYPES[_validate.check_choice("pool", pool, tuple(POOL_TYPES))]
    for conv_name, filters, pool_name in spec["convs"]:
        x = keras.layers.Conv2D(filters, 5, activation=activation, name=conv_name)(x)
        x = pool_layer(2, strides=2, name=pool_name)(x)
    x = keras.layers.Conv2D(spec["c5"], 5, activation=activation, name="c5")(x)
    return head.fully_connected(x, (("f6", spec["f6"]),), activation=activation)


# AlexNet (Krizhevsky et al., 2012), seed 003 §2.1 table: (name, filters, kernel, stride, padding, grouped, pool).
# "grouped" marks conv2/4/5, which see only their own GPU's half of the channels in the two-GPU original.
ALEXNET = {
    "convs": (
        ("conv1", 96, 11, 4, "valid", False, True),
        ("conv2", 256, 5, 1, "same", True, True),
        ("conv3", 384, 3, 1, "same", False, False),
        ("conv4", 384, 3, 1, "same", True, False),
        ("conv5", 256, 3, 1, "same", True, True),
    ),
    "lrn_after": ("conv1", "conv2"),
    "fc": (("fc6", 4096), ("fc7", 4096)),
}


@register("alexnet", family="alexnet", default_input=(227, 227, 3), min_input=67, fixed_input=True, spec=ALEXNET)
def alexnet(x, head, *, spec, groups=1, lrn=True, dropout=0.5):
    """AlexNet (Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep CNNs", NeurIPS 2012).

    Overlapping 3x3/2 max pooling, LRN (k=2, n=5, alpha=1e-4, beta=0.75) after the first two stages,
    dropout 0.5 in fc6/fc7; 62,378,344 parameters at 1000 classes (seed table). Options: ``groups=2`` for the
    original two-GPU grouped convolutions in conv2/4/5 (60,965,224 parameters), ``lrn``, ``dropout``.
    """
    _validate.check_choice("groups", groups, (1, 2))
    _validate.check_bool("lrn", lrn)
    dropout = _validate.check_rate("dropout", dropout)
    for name, filters, kernel, stride, padding, grouped, pool in spec["convs"]:
        x = keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding, groups=groups if grouped else 1,
                                activation="relu", name=name)(x)
        if pool:
            x = keras.layers.MaxPooling2D(3, strides=2, name=f"pool{name[-1]}")(x)
        if lrn and name in spec["lrn_after"]:
            x = LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=2.0, name=f"lrn{name[-1]}")(x)
    return head.fully_connected(x, spec["fc"], dropout=dropout)


# VGG (Simonyan & Zisserman, 2015), Table 1: kernel sizes of the convolutions in each of the five blocks;
# block widths are 64, 128, 256, 512, 512 and each block ends in 2x2/2 max pooling.
VGG_WIDTHS = (64, 128, 256, 512, 512)
VGG_CONFIGS = {
    "A": ((3,), (3,), (3, 3), (3, 3), (3, 3)),
    "B": ((3, 3), (3, 3), (3, 3), (3, 3), (3, 3)),
    "C": ((3, 3), (3, 3), (3, 3, 1), (3, 3, 1), (3, 3, 1)),
    "D": ((3, 3), (3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    "E": ((3, 3), (3, 3), (3, 3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3)),
}
VGG_VARIANTS = {
    "vgg11": ("A", {}),
    "vgg11_lrn": ("A", {"lrn": True}),
    "vgg13": ("B", {}),
    "vgg16_c": ("C", {}),
    "vgg16": ("D", {}),
    "vgg19": ("E", {}),
    "vgg11_bn": ("A", {"batch_norm": True}),
    "vgg13_bn": ("B", {"batch_norm": True}),
    "vgg16_bn": ("D", {"batch_norm": True}),
    "vgg19_bn": ("E", {"batch_norm": True}),
}


def vgg(x, head, *, spec, batch_norm=False, lrn=False, dropout=0.5):
    """VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", 2015).

    ``spec`` is one column of the paper's Table 1. Options: ``batch_norm`` (BN after every convolution, as
    torchvision's ``vgg*_bn``), ``lrn`` (configuration A-LRN: LRN after the first convolution), ``dropout``
    in fc6/fc7 (0.5 in the paper).
    """
    _validate.check_bool("batch_norm", batch_norm)
    _validate.check_bool("lrn", lrn)
    dropout = _validate.check_rate("dropout", dropout)
    for block, (width, kernels) in enumerate(zip(VGG_WIDTHS, spec), start=1):
        for index, kernel in enumerate(kernels, start=1):
            # torchvision and timm keep the (redundant) bias before BN; kept for checkpoint compatibility
            x = conv_bn_act(x, width, kernel, batch_norm=batch_norm, use_bias=True,
                            name=f"block{block}_conv{index}")
            if lrn and block == 1 and index == 1:
                x = LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=2.0, name="block1_lrn")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    return head.fully_connected(x, (("fc6", 4096), ("fc7", 4096)), dropout=dropout)


for _name, (_config, _defaults) in VGG_VARIANTS.items():
    register(_name, family="vgg", default_input=(224, 224, 3), min_input=32, fixed_input=True,
             spec=VGG_CONFIGS[_config], **_defaults)(vgg)


# Network in Network (Lin, Chen & Yan, ICLR 2014), ImageNet model released with the paper (Caffe model zoo
# "NIN-Imagenet"): (block, filters, kernel, stride); each mlpconv block is a kxk convolution and two 1x1
# convolutions ("cccp" layers), then 3x3/2 max pooling; dropout 0.5 before the last block, whose second 1x1
# convolution is the classifier (cccp8), followed by global average pooling.
NIN = {
    "blocks": ((1, 96, 11, 4), (2, 256, 5, 1), (3, 384, 3, 1)),
    "last": (4, 1024, 3, 1),
}


@register("nin", family="nin", default_input=(224, 224, 3), min_input=59, spec=NIN)
def nin(x, head, *, spec, dropout=0.5):
    """Network in Network (Lin et al., 2014), ImageNet configuration (7,595,176 parameters at 1000 classes).

    The first pooling pads ("same") to reproduce Caffe's ceil-mode pooling, so a 224x224 input ends in the
    paper model's 6x6 map. ``include_top=False`` returns the 1024-channel map before the classifier.
    """
    dropout = _validate.check_rate("dropout", dropout)
    for block, filters, kernel, stride in spec["blocks"]:
        x = _mlpconv(x, block, filters, kernel, stride, padding="valid" if block == 1 else "same")
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same" if block == 1 else "valid",
                                      name=f"block{block}_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="block3_dropout")(x)
    block, filters, kernel, stride = spec["last"]
    x = conv_bn_act(x, filters, kernel, strides=stride, name=f"block{block}_conv")
    x = conv_bn_act(x, filters, 1, name=f"block{block}_cccp1")
    return head.convolutional(x, activation="relu")


def _mlpconv(x, block, filters, kernel, stride, padding):
    """One mlpconv block: a kxk convolution and two 1x1 convolutions, each with ReLU."""
    x = conv_bn_act(x, filters, kernel, strides=stride, padding=padding, name=f"block{block}_conv")
    x = conv_bn_act(x, filters, 1, name=f"block{block}_cccp1")
    return conv_bn_act(x, filters, 1, name=f"block{block}_cccp2")
