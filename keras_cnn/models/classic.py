"""The classic family: LeNet-5, AlexNet, VGG A-E and Network in Network.

Each builder reads its variant row, a frozen dataclass mirroring the paper's table (seed 003 §1-3, 004 NiN).
Spec and options (CONTRIBUTING.md): the row is the architecture (VGG's A-LRN and torchvision's ``_bn``, AlexNet's
one-GPU ``alexnet_owt`` included, each a registered variant); the options are regularisation (dropout) and the
knobs every row accepts with the paper's value as default (LeNet's activation and pooling, AlexNet's two-GPU
groups and LRN).
"""

import dataclasses

import keras

from keras_cnn import _validate
from keras_cnn.layers import LocalResponseNormalization, conv_bn_act
from keras_cnn.registry import register

POOL_TYPES = {"avg": keras.layers.AveragePooling2D, "max": keras.layers.MaxPooling2D}


@dataclasses.dataclass(frozen=True)
class LeNetSpec:
    """LeNet-5's layers (LeCun et al., 1998; seed 003 table): C1 6@5x5, S2 2x2/2, C3 16@5x5, S4 2x2/2, C5 120@5x5,
    F6 84."""

    convs: tuple  # (convolution name, 5x5 maps, following 2x2/2 subsampling name)
    c5: int  # maps of the 5x5 convolution C5
    f6: int  # units of the fully connected F6


LENET5 = LeNetSpec(convs=(("c1", 6, "s2"), ("c3", 16, "s4")), c5=120, f6=84)


@register("lenet5", family="lenet", default_input=(32, 32, 1), min_input=32, fixed_input=True, spec=LENET5)
def lenet5(x, head, *, spec, activation="tanh", pool="avg"):
    """LeNet-5 (LeCun et al., "Gradient-based learning applied to document recognition", 1998).

    Options: ``activation`` ("tanh" as in the paper's squashing function, or e.g. "relu") and ``pool``
    ("avg" for the paper's subsampling, "max" for the modern variant). The RBF output layer is replaced by
    ``Dense(classes)`` and C3 is fully connected to S2 (the paper's partial connection table is not used).
    """
    _validate.check_activation("activation", activation)
    pool_layer = POOL_TYPES[_validate.check_choice("pool", pool, tuple(POOL_TYPES))]
    for conv_name, filters, pool_name in spec.convs:
        x = keras.layers.Conv2D(filters, 5, activation=activation, name=conv_name)(x)
        x = pool_layer(2, strides=2, name=pool_name)(x)
    x = keras.layers.Conv2D(spec.c5, 5, activation=activation, name="c5")(x)
    return head.fully_connected(x, (("f6", spec.f6),), activation=activation)


@dataclasses.dataclass(frozen=True)
class AlexNetSpec:
    """AlexNet's layers (Krizhevsky et al., 2012; seed 003 §2.1 table), or a later one-GPU column of them."""

    # (name, filters, kernel, stride, padding, grouped, pool): padding "valid", "same", or an int, that many zeros
    # on every side (Caffe's and PyTorch's ``pad``); "grouped" marks conv2/4/5, which see only their own GPU's
    # half of the channels in the two-GPU original
    convs: tuple
    lrn_after: tuple  # convolutions followed by local response normalisation
    fc: tuple  # (name, units) of the hidden fully connected layers


ALEXNET = AlexNetSpec(
    convs=(
        ("conv1", 96, 11, 4, "valid", False, True),
        ("conv2", 256, 5, 1, "same", True, True),
        ("conv3", 384, 3, 1, "same", False, False),
        ("conv4", 384, 3, 1, "same", True, False),
        ("conv5", 256, 3, 1, "same", True, True),
    ),
    lrn_after=("conv1", "conv2"),
    fc=(("fc6", 4096), ("fc7", 4096)),
)
# torchvision's ``alexnet`` (its file: alexnet-owt): the one-GPU column of Krizhevsky's cuda-convnet2
# (layers-imagenet-1gpu.cfg) that the Torch re-implementation of "One weird trick for parallelizing convolutional
# neural networks" (Krizhevsky, 2014) took: 64-192-384-256-256 filters (that paper's footnote says 384 for
# conv4; torchvision kept 256, pytorch/vision#463), 224x224 inputs with conv1 padded by 2, no LRN.
ALEXNET_OWT = AlexNetSpec(
    convs=(
        ("conv1", 64, 11, 4, 2, False, True),
        ("conv2", 192, 5, 1, "same", True, True),
        ("conv3", 384, 3, 1, "same", False, False),
        ("conv4", 256, 3, 1, "same", True, False),
        ("conv5", 256, 3, 1, "same", True, True),
    ),
    lrn_after=(),
    fc=(("fc6", 4096), ("fc7", 4096)),
)
# name: (row, default input, smallest input that leaves pool5 a 1x1 map)
ALEXNET_VARIANTS = {"alexnet": (ALEXNET, 227, 67), "alexnet_owt": (ALEXNET_OWT, 224, 63)}


def alexnet(x, head, *, spec, groups=1, lrn=True, dropout=0.5):
    """AlexNet (Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep CNNs", NeurIPS 2012).

    ``alexnet``: overlapping 3x3/2 max pooling, LRN (k=2, n=5, alpha=1e-4, beta=0.75) after the first two stages,
    dropout 0.5 in fc6/fc7; 62,378,344 parameters at 1000 classes (seed table). ``alexnet_owt``: torchvision's
    one-GPU form (:data:`ALEXNET_OWT`, 61,100,840 parameters), which has no LRN. Options: ``groups=2`` for the
    original two-GPU grouped convolutions in conv2/4/5 (60,965,224 parameters for ``alexnet``), ``lrn`` (the
    row's LRN layers on or off), ``dropout``.
    """
    _validate.check_choice("groups", groups, (1, 2))
    _validate.check_bool("lrn", lrn)
    dropout = _validate.check_rate("dropout", dropout)
    for name, filters, kernel, stride, padding, grouped, pool in spec.convs:
        if not isinstance(padding, str):  # explicit zeros on every side, as the Caffe/PyTorch layer pads
            x, padding = keras.layers.ZeroPadding2D(padding, name=f"{name}_pad")(x), "valid"
        x = keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding, groups=groups if grouped else 1,
                                activation="relu", name=name)(x)
        if pool:
            x = keras.layers.MaxPooling2D(3, strides=2, name=f"pool{name[-1]}")(x)
        if lrn and name in spec.lrn_after:
            x = LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=2.0, name=f"lrn{name[-1]}")(x)
    return head.fully_connected(x, spec.fc, dropout=dropout)


for _name, (_spec, _size, _minimum) in ALEXNET_VARIANTS.items():
    register(_name, family="alexnet", default_input=(_size, _size, 3), min_input=_minimum, fixed_input=True,
             spec=_spec)(alexnet)


@dataclasses.dataclass(frozen=True)
class VGGSpec:
    """One column of Table 1 (Simonyan & Zisserman, 2015), or its torchvision ``_bn`` form."""

    kernels: tuple  # kernel sizes of the convolutions in each of the five blocks (each ends in 2x2/2 max pooling)
    lrn: bool = False  # configuration A-LRN: LRN after the first convolution
    batch_norm: bool = False  # BN after every convolution (torchvision's vgg*_bn; not in the paper)
    widths: tuple = (64, 128, 256, 512, 512)  # convolution width of each block


VGG_A = ((3,), (3,), (3, 3), (3, 3), (3, 3))
VGG_B = ((3, 3), (3, 3), (3, 3), (3, 3), (3, 3))
VGG_C = ((3, 3), (3, 3), (3, 3, 1), (3, 3, 1), (3, 3, 1))
VGG_D = ((3, 3), (3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3))
VGG_E = ((3, 3), (3, 3), (3, 3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3))
VGG_VARIANTS = {
    "vgg11": VGGSpec(VGG_A),
    "vgg11_lrn": VGGSpec(VGG_A, lrn=True),
    "vgg13": VGGSpec(VGG_B),
    "vgg16_c": VGGSpec(VGG_C),
    "vgg16": VGGSpec(VGG_D),
    "vgg19": VGGSpec(VGG_E),
    "vgg11_bn": VGGSpec(VGG_A, batch_norm=True),
    "vgg13_bn": VGGSpec(VGG_B, batch_norm=True),
    "vgg16_bn": VGGSpec(VGG_D, batch_norm=True),
    "vgg19_bn": VGGSpec(VGG_E, batch_norm=True),
}


def vgg(x, head, *, spec, dropout=0.5):
    """VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", 2015).

    ``spec`` is a :class:`VGGSpec`: one column of the paper's Table 1 (A-LRN's LRN included) or torchvision's
    batch-normalised form. Option: ``dropout`` in fc6/fc7 (0.5 in the paper).
    """
    dropout = _validate.check_rate("dropout", dropout)
    for block, (width, kernels) in enumerate(zip(spec.widths, spec.kernels), start=1):
        for index, kernel in enumerate(kernels, start=1):
            # torchvision and timm keep the (redundant) bias before BN; kept for checkpoint compatibility
            x = conv_bn_act(x, width, kernel, batch_norm=spec.batch_norm, use_bias=True,
                            name=f"block{block}_conv{index}")
            if spec.lrn and block == 1 and index == 1:
                x = LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=2.0, name="block1_lrn")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    return head.fully_connected(x, (("fc6", 4096), ("fc7", 4096)), dropout=dropout)


for _name, _spec in VGG_VARIANTS.items():
    register(_name, family="vgg", default_input=(224, 224, 3), min_input=32, fixed_input=True, spec=_spec)(vgg)


@dataclasses.dataclass(frozen=True)
class NiNSpec:
    """Network in Network (Lin, Chen & Yan, ICLR 2014), the ImageNet model released with the paper (Caffe model
    zoo "NIN-Imagenet"): each mlpconv block is a kxk convolution and two 1x1 convolutions ("cccp" layers), then
    3x3/2 max pooling; dropout 0.5 before the last block, whose second 1x1 convolution is the classifier (cccp8),
    followed by global average pooling."""

    blocks: tuple  # (block, filters, kernel, stride) of the pooled mlpconv blocks
    last: tuple  # (block, filters, kernel, stride) of the last block


NIN = NiNSpec(blocks=((1, 96, 11, 4), (2, 256, 5, 1), (3, 384, 3, 1)), last=(4, 1024, 3, 1))


@register("nin", family="nin", default_input=(224, 224, 3), min_input=59, spec=NIN)
def nin(x, head, *, spec, dropout=0.5):
    """Network in Network (Lin et al., 2014), ImageNet configuration (7,595,176 parameters at 1000 classes).

    The first pooling pads ("same") to reproduce Caffe's ceil-mode pooling, so a 224x224 input ends in the
    paper model's 6x6 map. ``include_top=False`` returns the 1024-channel map before the classifier.
    """
    dropout = _validate.check_rate("dropout", dropout)
    for block, filters, kernel, stride in spec.blocks:
        x = _mlpconv(x, block, filters, kernel, stride, padding="valid" if block == 1 else "same")
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same" if block == 1 else "valid",
                                      name=f"block{block}_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="block3_dropout")(x)
    block, filters, kernel, stride = spec.last
    x = conv_bn_act(x, filters, kernel, strides=stride, name=f"block{block}_conv")
    x = conv_bn_act(x, filters, 1, name=f"block{block}_cccp1")
    return head.convolutional(x, activation="relu")


def _mlpconv(x, block, filters, kernel, stride, padding):
    """One mlpconv block: a kxk convolution and two 1x1 convolutions, each with ReLU."""
    x = conv_bn_act(x, filters, kernel, strides=stride, padding=padding, name=f"block{block}_conv")
    x = conv_bn_act(x, filters, 1, name=f"block{block}_cccp1")
    return conv_bn_act(x, filters, 1, name=f"block{block}_cccp2")
