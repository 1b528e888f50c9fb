"""The residual family: ResNet v1 and pre-activation v2 (ImageNet and CIFAR depths), ResNeXt, SENet and
stochastic depth: one builder driven by a per-variant table (seed 003 §5-7).

Spec and options (CONTRIBUTING.md): a variant's architecture is its :class:`ResNetSpec` row (depths, widths,
stem, unit v1/v2, shortcut type, ResNeXt C and d, SE ratio, where a bottleneck strides); the options are
regularisation and initialisation (stochastic depth, dropout, zero-init of the last BN) and two ablations of any
row, ``shortcut`` and ``stride_in_1x1`` (default None: the row's value); ``downsample``, ``stem_norm`` and
``conv_bias`` give the forms of released checkpoints that differ from the paper's (keras.applications' v2).

Reference implementations the tables and parameter counts follow: torchvision (ResNet, ResNeXt), the authors'
fb.resnet.torch / resnet-1k-layers code (CIFAR and pre-activation nets), Cadene's pretrainedmodels (SENet).
"""

import dataclasses
import functools
import sys

import keras

from keras_cnn import _validate
from keras_cnn.layers import (CeilModeMaxPooling2D, DropPath, StochasticDepth, ZeroPadChannels, conv_bn_act,
                              squeeze_excite)
from keras_cnn.layers.conv import BN_EPSILON
from keras_cnn.layers.normalization import BatchNormalization
from keras_cnn.registry import register

SHORTCUTS = ("A", "B", "C")


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
    """One row of the family table (He et al. 2016, Table 1 and §4.2; Xie et al. 2017; Hu et al. 2018)."""

    block: str  # "basic": two 3x3 convolutions; "bottleneck": 1x1, 3x3, 1x1 with expansion 4
    depths: tuple  # residual blocks per stage
    widths: tuple = (64, 128, 256, 512)  # each stage's "planes" (bottleneck: the 3x3 width of ResNet)
    stem: str = "imagenet"  # a key of STEMS
    shortcut_kernel: int = 1  # kernel of a strided projection shortcut (SENet-154: 3)
    conv1_ratio: float = 1.0  # width of the first 1x1 convolution relative to the grouped 3x3 (SENet-154: 0.5)
    preact: bool = False  # v2 unit (He et al. 2016b): BN-ReLU before each convolution, identity path left clean
    # shortcut and stride_in_1x1 are also ablation options of the builder (None there: this row's value)
    shortcut: str = "B"  # "A" zero-padded identity, "B" projection where the shape changes, "C" always (Table 3)
    cardinality: int = 1  # ResNeXt C (Xie et al. Table 1): groups of the 3x3 convolution
    base_width: int = 64  # ResNeXt d: the grouped 3x3 has C * d * planes / 64 channels
    stride_in_1x1: bool = False  # stride a bottleneck's first 1x1 (Caffe releases), not its 3x3 (torchvision)
    se_reduction: int | None = None  # SE block with ratio r on each residual branch (Hu et al. Table 1)

    def __post_init__(self):
        _validate.check_choice("block", self.block, ("basic", "bottleneck"))
        _validate.check_choice("stem", self.stem, tuple(STEMS))
        _validate.check_bool("preact", self.preact)
        _validate.check_choice("shortcut", self.shortcut, SHORTCUTS)
        _validate.check_int("cardinality", self.cardinality, minimum=1)
        _validate.check_int("base_width", self.base_width, minimum=1)
        _validate.check_bool("stride_in_1x1", self.stride_in_1x1)
        narrowest = self.widths[0] * _expansion(self)
        if self.se_reduction is not None and _validate.check_int("se_reduction", self.se_reduction,
                                                                 minimum=1) > narrowest:
            raise ValueError(f"se_reduction must be at most {narrowest} (the narrowest block's channels) or None; "
                             f"received {self.se_reduction}.")
        if self.block == "basic" and (self.cardinality, self.base_width) != (1, 64):
            raise ValueError(f"basic-block ResNets have no grouped convolution: cardinality must be 1 and "
                             f"base_width 64; received cardinality={self.cardinality}, base_width={self.base_width}.")
        if self.widths[0] * self.base_width < 64:
            raise ValueError(f"base_width must be at least {-(-64 // self.widths[0])} so that every stage keeps one "
                             f"channel per group; received {self.base_width}.")


def _expansion(spec):
    return 1 if spec.block == "basic" else 4


# Stems: (filters, kernel, stride) convolutions, each with BN and ReLU, then the stem's max pooling: "torch" pads
# by one on each side (torchvision); "ceil" is Caffe's ceil-mode pooling of the SENet models.
STEMS = {
    "imagenet": {"convs": ((64, 7, 2),), "pool": "torch"},
    "caffe": {"convs": ((64, 7, 2),), "pool": "ceil"},
    "deep": {"convs": ((64, 3, 2), (64, 3, 1), (128, 3, 1)), "pool": "ceil"},  # SENet-154
    "cifar": {"convs": ((16, 3, 1),), "pool": None},  # He et al. 2016 §4.2: 3x3 conv with 16 filters
}

# ImageNet depths, He et al. 2016 Table 1; ResNet-200 from the pre-activation paper (He et al. 2016b).
IMAGENET = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}
CIFAR_WIDTHS = (16, 32, 64)
# CIFAR: 6n+2 layers of basic blocks (He et al. 2016 §4.2), 9n+2 of bottlenecks (He et al. 2016b §5): depth -> n.
CIFAR_V1 = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18, 1202: 200}
CIFAR_V2 = {164: 18, 1001: 111}


def _imagenet(depth, stem="imagenet", **spec):
    block, depths = IMAGENET[depth]
    return ResNetSpec(block, depths, stem=stem, **spec)


def _cifar(block, n, **spec):
    return ResNetSpec(block, (n,) * 3, CIFAR_WIDTHS, "cifar", **spec)


SE = {"se_reduction": 16}
VARIANTS = {
    **{f"resnet{d}": _imagenet(d) for d in (18, 34, 50, 101, 152)},
    **{f"resnet{d}_v2": _imagenet(d, preact=True) for d in (18, 34, 50, 101, 152, 200)},
    # CIFAR nets use the parameter-free option A shortcuts (He et al. 2016 §4.2).
    **{f"resnet{d}": _cifar("basic", n, shortcut="A") for d, n in CIFAR_V1.items()},
    # resnet-1k-layers (the authors' code) strides the first 1x1 convolution.
    **{f"resnet{d}_v2": _cifar("bottleneck", n, preact=True, stride_in_1x1=True) for d, n in CIFAR_V2.items()},
    # ResNeXt (Xie et al. 2017, Table 1): cardinality C and bottleneck width d of "CxDd".
    "resnext50_32x4d": _imagenet(50, cardinality=32, base_width=4),
    "resnext101_32x4d": _imagenet(101, cardinality=32, base_width=4),
    "resnext101_32x8d": _imagenet(101, cardinality=32, base_width=8),
    "resnext101_64x4d": _imagenet(101, cardinality=64, base_width=4),
    # SENet (Hu et al. 2018, Table 1) as released in Caffe: SE-ResNets stride the first 1x1 convolution.
    "se_resnet50": _imagenet(50, "caffe", **SE, stride_in_1x1=True),
    "se_resnet101": _imagenet(101, "caffe", **SE, stride_in_1x1=True),
    "se_resnet152": _imagenet(152, "caffe", **SE, stride_in_1x1=True),
    "se_resnext50_32x4d": _imagenet(50, "caffe", **SE, cardinality=32, base_width=4),
    "se_resnext101_32x4d": _imagenet(101, "caffe", **SE, cardinality=32, base_width=4),
    "senet154": _imagenet(152, "deep", **SE, cardinality=64, base_width=4, shortcut_kernel=3, conv1_ratio=0.5),
}
# Regularisation of a release that differs from the builder's defaults: SENet-154's dropout before the classifier.
OPTION_DEFAULTS = {"senet154": {"dropout": 0.2}}

DROP_PATH_MODES = ("batch", "sample")
DOWNSAMPLES = ("first", "last")


@dataclasses.dataclass(frozen=True)
class _Options:
    """The validated options a block needs, with the variant's table row."""

    spec: ResNetSpec
    drop_path_mode: str
    zero_init_last: bool
    conv_bias: bool = False


def _strides(spec, downsample):
    """``[[stride of each unit] per stage]``: stages 2-4 halve the map in their first unit (the paper, torchvision,
    fb.resnet.torch) or stages 1-3 in their last unit (``"last"``: TF-slim's resnet_v2, keras.applications'
    ResNet*V2); the output has the same size either way."""
    stages = len(spec.depths)
    if downsample == "first":
        return [[2 if stage > 0 and block == 0 else 1 for block in range(depth)]
                for stage, depth in enumerate(spec.depths)]
    return [[2 if stage < stages - 1 and block == depth - 1 else 1 for block in range(depth)]
            for stage, depth in enumerate(spec.depths)]


def resnet(x, head, *, spec, shortcut=None, stride_in_1x1=None, downsample="first", stem_norm=True, conv_bias=False,
           drop_path_rate=0.0, drop_path_mode="batch", dropout=0.0, zero_init_last=False):
    """Residual networks: ResNet (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016), pre-
    activation ResNet (He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016), ResNeXt (Xie et al.,
    "Aggregated Residual Transformations for Deep Neural Networks", CVPR 2017), SENet (Hu et al., "Squeeze-and-
    Excitation Networks", CVPR 2018) and stochastic depth (Huang et al., ECCV 2016); ``spec`` is a
    :class:`ResNetSpec` row.

    Ablations of the row, None keeping the row's value: ``shortcut`` ("A" zero-padded identity, "B" projection
    where the shape changes, "C" projection on every unit: the paper's Table 3) and ``stride_in_1x1`` (True: a
    bottleneck strides its first 1x1, as the Caffe/MSRA models and keras.applications ResNet-50; False: its 3x3,
    as torchvision's "v1.5"; bottleneck rows only).

    Forms of released checkpoints: ``downsample`` ("first": stages 2-4 stride in their first unit, as the paper;
    "last": stages 1-3 stride in their last unit, whose shortcut is then the subsampled identity, as TF-slim's
    resnet_v2 and keras.applications' ResNet*V2). Pre-activation rows only: ``stem_norm`` (True: BN-ReLU after
    the stem convolution, as fb.resnet.torch; False: the stem convolution feeds the max pooling directly and the
    first unit pre-activates, as TF-slim: "we do not include batch normalization or activation functions in
    conv1 because the first ResNet unit will perform these") and ``conv_bias`` (True: the convolutions no BN
    follows, i.e. each branch's last convolution, the projection shortcuts and with ``stem_norm=False`` the stem,
    have biases, as TF-slim's resnet_v2 and keras.applications' ResNet*V2).

    Options: ``drop_path_rate`` (stochastic depth: drop probability 1 - p_L of the last block, linearly smaller
    for earlier ones), ``drop_path_mode`` ("batch": a block is dropped for the whole mini-batch and not computed,
    scaled by its survival probability at inference, as in the paper; "sample": per-sample drop path, rescaled in
    training), ``dropout`` before the classifier, and ``zero_init_last`` (zero the last BN gamma of every residual
    branch, or its last kernel in v2, so each unit starts as the identity: timm's ``zero_init_last``,
    torchvision's ``zero_init_residual``; the very deep v1 nets otherwise start with activations growing about
    1.15x per unit in inference mode, ~1e37 at the output of ResNet-1202).
    """
    _validate.check_choice("drop_path_mode", drop_path_mode, DROP_PATH_MODES)
    _validate.check_choice("downsample", downsample, DOWNSAMPLES)
    spec = _ablation(spec, shortcut, stride_in_1x1)
    options = _Options(spec, drop_path_mode, _validate.check_bool("zero_init_last", zero_init_last),
                       _preact_form(spec, "conv_bias", conv_bias, False))
    stem_norm = _preact_form(spec, "stem_norm", stem_norm, True)
    drop_path_rate = _validate.check_rate("drop_path_rate", drop_path_rate)
    dropout = _validate.check_rate("dropout", dropout)
    _allow_deep_graph(sum(spec.depths))
    x = _stem(x, STEMS[spec.stem], norm=stem_norm, bias=options.conv_bias)
    total, index = sum(spec.depths), 0
    for stage, (planes, strides) in enumerate(zip(spec.widths, _strides(spec, downsample)), start=1):
        for block, stride in enumerate(strides, start=1):
            index += 1
            # p_l = 1 - (l / L)(1 - p_L): the paper's linear decay (seed 003 §6.3.1, item 3)
            x = _block(x, options, name=f"stage{stage}_block{block}", planes=planes, stride=stride,
                       preact_input=index > 1 or not stem_norm, drop_rate=drop_path_rate * index / total)
    if spec.preact:  # the extra activation after the last addition (He et al. 2016b, appendix)
        x = _bn_relu(x, "post")
    return head.pooled(x, dropout=dropout)


def _ablation(spec, shortcut, stride_in_1x1):
    """The row with the ablations that are not None; the registered row itself never changes."""
    changes = {}
    if shortcut is not None:
        changes["shortcut"] = _validate.check_choice("shortcut", shortcut, (None, *SHORTCUTS))
    if stride_in_1x1 is not None:
        changes["stride_in_1x1"] = _validate.check_bool("stride_in_1x1", stride_in_1x1)
        if spec.block == "basic":
            raise ValueError(f"stride_in_1x1 applies only to bottleneck ResNets; this variant has basic blocks "
                             f"(no 1x1 convolution), so leave it None; received {stride_in_1x1}.")
    return dataclasses.replace(spec, **changes)


def _preact_form(spec, name, value, default):
    """A pre-activation-only option, checked: v1 rows normalise every convolution, so only the default fits."""
    _validate.check_bool(name, value)
    if value != default and not spec.preact:
        raise ValueError(f"{name} applies only to pre-activation (v2) ResNets, whose stem and last branch "
                         f"convolutions need no BatchNormalization; this variant is v1, so leave it {default}; "
                         f"received {value}.")
    return value


def _allow_deep_graph(blocks):
    """Keras maps a functional graph recursively, about one Python frame per layer on its longest path: the
    ~4,200 layers of ResNet-1202 need more than Python's default limit of 1,000 (raised, never lowered)."""
    needed = 1_000 + 12 * blocks
    if sys.getrecursionlimit() < needed:
        sys.setrecursionlimit(needed)


def _stem(x, stem, *, norm=True, bias=False):
    """Convolutions with BN-ReLU, then max pooling. The pre-activation nets keep the BN-ReLU here too: the paper
    puts "the first activation right after conv1", before the first unit splits into its two paths; with
    ``norm=False`` (TF-slim) the last convolution has none (and a bias with ``bias``)."""
    for index, (filters, kernel, stride) in enumerate(stem["convs"], start=1):
        name = "stem_conv" if len(stem["convs"]) == 1 else f"stem_conv{index}"
        last = index == len(stem["convs"])
        x = _conv(x, filters, kernel, stride=stride, name=name, batch_norm=norm or not last,
                  activation="relu" if norm or not last else None, use_bias=bias and not norm and last)
    if stem["pool"] == "torch":
        # zeros after a ReLU never win the max (PyTorch's -inf padding); without the stem's BN-ReLU they can, as
        # in the TF-slim/keras.applications checkpoints, which pad zeros too
        x = keras.layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        return keras.layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    if stem["pool"] == "ceil":
        return CeilModeMaxPooling2D(3, strides=2, name="stem_pool")(x)
    return x


def _conv(x, filters, kernel, *, name, stride=1, groups=1, batch_norm=True, activation="relu", zero_init=False,
          use_bias=False):
    """``conv_bn_act``, without bias unless ``use_bias``; a strided kxk convolution pads (k-1)/2 on every side
    first ("symmetric"), as PyTorch, Caffe and keras.applications' ResNets do (Keras "same" would pad only the
    bottom/right), so ported weights see the same pixels. A 1x1 convolution needs no padding at any stride."""
    padding = "symmetric" if kernel > 1 else "valid"
    return conv_bn_act(x, filters, kernel, strides=stride, padding=padding, groups=groups, batch_norm=batch_norm,
                       activation=activation, use_bias=use_bias, zero_init=zero_init, name=name)


def _bn_relu(x, name):
    x = BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _block(x, options, *, name, planes, stride, preact_input, drop_rate):
    """One residual unit: ``relu(shortcut(x) + F(x))`` (v1) or ``shortcut(x) + F(x)`` with F pre-activated (v2).

    ``preact_input`` is False for the first unit, whose input the stem has already activated.
    """
    spec = options.spec
    out_channels = planes * _expansion(spec)
    # option B projects where the channels change ("projection shortcuts are used for increasing dimensions"); a
    # unit that only subsamples (downsample="last") keeps the identity, performed with a stride
    project = spec.shortcut == "C" or (spec.shortcut == "B" and x.shape[-1] != out_channels)
    preact_branch = spec.preact and preact_input
    if preact_branch and project:  # a projection shares the pre-activation with the branch (He et al. 2016b)
        x = _bn_relu(x, f"{name}_preact")
        preact_branch = False
    shortcut = _shortcut(x, options, out_channels, stride, project, name)
    branch = functools.partial(_branch, options=options, name=name, planes=planes, out_channels=out_channels,
                               stride=stride, preact=preact_branch)
    x = _add(shortcut, x, branch, name=name, drop_rate=drop_rate, mode=options.drop_path_mode)
    return x if spec.preact else keras.layers.ReLU(name=f"{name}_out")(x)


def _shortcut(x, options, out_channels, stride, project, name):
    """Projection (1x1 convolution, or the table's kernel when strided, with BN in v1), else the identity,
    subsampled and zero-padded where the shape changes (option A)."""
    if project:
        kernel = options.spec.shortcut_kernel if stride > 1 else 1
        preact = options.spec.preact
        return _conv(x, out_channels, kernel, stride=stride, batch_norm=not preact, activation=None,
                     use_bias=preact and options.conv_bias, name=f"{name}_shortcut")
    if stride > 1:  # the paper's identity "performed with a stride of 2": keep every other pixel
        x = keras.layers.MaxPooling2D(1, strides=stride, name=f"{name}_shortcut_pool")(x)
    if x.shape[-1] != out_channels:
        x = ZeroPadChannels(out_channels - x.shape[-1], name=f"{name}_shortcut_pad")(x)
    return x


def _branch(x, *, options, name, planes, out_channels, stride, preact):
    """The residual function F: two 3x3 convolutions, or 1x1 - grouped 3x3 - 1x1, then the optional SE block."""
    if preact:
        x = _bn_relu(x, f"{name}_preact")
    spec = options.spec
    if spec.block == "basic":
        convs = ((planes, 3, stride, 1), (out_channels, 3, 1, 1))
    else:
        width = planes * spec.base_width // 64 * spec.cardinality
        stride1, stride3 = (stride, 1) if spec.stride_in_1x1 else (1, stride)
        convs = ((int(width * spec.conv1_ratio), 1, stride1, 1), (width, 3, stride3, spec.cardinality),
                 (out_channels, 1, 1, 1))
    for index, (filters, kernel, conv_stride, groups) in enumerate(convs, start=1):
        last = index == len(convs)
        # v1 ends in BN (added before the ReLU); v2 ends in the bare convolution, normalised by the next unit
        bare = last and spec.preact
        x = _conv(x, filters, kernel, stride=conv_stride, groups=groups, batch_norm=not bare,
                  activation=None if last else "relu", zero_init=last and options.zero_init_last,
                  use_bias=bare and options.conv_bias, name=f"{name}_conv{index}")
    if spec.se_reduction:
        x = squeeze_excite(x, out_channels // spec.se_reduction, name=f"{name}_se")
    return x


def _add(shortcut, x, branch, *, name, drop_rate, mode):
    """``shortcut + branch(x)``; with stochastic depth either a ``StochasticDepth`` layer around the branch built
    as a nested model named ``<name>_residual`` (batch mode: a dropped branch is not computed) or per-sample
    ``DropPath`` on the branch output."""
    if drop_rate and mode == "batch":
        inputs = keras.Input((None, None, x.shape[-1]), name=f"{name}_input")
        residual = keras.Model(inputs, branch(inputs), name=f"{name}_residual")
        return StochasticDepth(residual, survival_probability=1.0 - drop_rate, name=f"{name}_add")([shortcut, x])
    x = branch(x)
    if drop_rate:
        x = DropPath(drop_rate, name=f"{name}_drop_path")(x)
    return keras.layers.Add(name=f"{name}_add")([shortcut, x])


for _name, _spec in VARIANTS.items():
    _cifar = _spec.stem == "cifar"
    # min_input: the size whose last feature map is 1x1 (keras.applications' rule): 32 / 4 for CIFAR
    register(_name, family="resnet", default_input=(32, 32, 3) if _cifar else (224, 224, 3),
             min_input=4 if _cifar else 32, spec=_spec, **OPTION_DEFAULTS.get(_name, {}))(resnet)
