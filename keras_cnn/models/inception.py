"""Inception v1-v3: GoogLeNet (with auxiliary classifiers), BN-Inception ("Inception v2") and Inception-v3.

Sources: seed 003 §4.1-4.3 and 001 (auxiliary classifiers), Szegedy et al. 2015 (Table 1), Ioffe & Szegedy 2015
(Fig. 5), Szegedy et al. 2016 ("Rethinking the Inception Architecture"), TF-slim / keras.applications for the
released Inception-v3. Modules are tables of branches (see :mod:`keras_cnn.layers.inception_blocks`).

Models with auxiliary classifiers (``aux_logits=True``) have several outputs, main first::

    model = keras_cnn.build("googlenet", aux_logits=True, classes=10)      # outputs: predictions, aux1, aux2
    model.compile("sgd", **aux_compile_kwargs(model))                      # loss weights 1, 0.3, 0.3
    model.fit(images, (labels,) * len(model.outputs))
    deployed = inference_model(model)                                      # main output only, same weights

Spec and options (CONTRIBUTING.md): a variant's architecture is its spec row (the modules of the paper's table,
where the auxiliary classifiers attach, SE-Inception's SE ratio); the options are the auxiliary heads for
training, regularisation and the forms of other releases that apply to the row (GoogLeNet's TF-slim/torchvision
``batch_norm``, ``kernel_5x5``, ``pool4_size``, ``padding``, ``aux_pooling``; Inception-v3's torchvision/timm BN gamma
``batch_norm_scale`` and ``count_include_pad``).

(Over 350 lines on purpose: three networks' tables and builders, with the stem and auxiliary-head helpers that
Inception-v4 and Inception-ResNet reuse.)
"""

import dataclasses

import keras

from keras_cnn import _validate
from keras_cnn.layers import CeilModeMaxPooling2D, LocalResponseNormalization, squeeze_excite
from keras_cnn.layers.conv import PADDINGS
from keras_cnn.layers.inception_blocks import (AdaptiveAveragePooling2D, Conv, ConvBN, Pool, Split, asymmetric,
                                               inception_module)
from keras_cnn.layers.se import check_reduction
from keras_cnn.model import inference_model  # noqa: F401  (re-exported: its documented home before 0.2)
from keras_cnn.registry import register

# Loss weight of each auxiliary output in training: 0.3 for GoogLeNet's two heads (Szegedy et al. 2015 §5,
# seed 001), 0.4 for Inception-v3's (the weight of TF-slim's train_image_classifier.py and torchvision's
# reference scripts; the v3 paper gives none). The main output "predictions" has weight 1.
AUX_LOSS_WEIGHTS = {"aux1_predictions": 0.3, "aux2_predictions": 0.3, "aux_predictions": 0.4}


def aux_compile_kwargs(model, loss="sparse_categorical_crossentropy"):
    """``loss`` and ``loss_weights`` for ``model.compile`` of a model built with ``aux_logits=True``.

    Every output gets ``loss``; the weights are 1 for ``predictions`` and :data:`AUX_LOSS_WEIGHTS` for the
    auxiliary heads. Use as ``model.compile(optimizer, **aux_compile_kwargs(model), metrics=...)`` and train with
    the labels repeated per output: ``model.fit(x, (y,) * len(model.outputs))``.
    """
    names = list(model.output_names)
    unknown = [n for n in names[1:] if n not in AUX_LOSS_WEIGHTS]
    if names[0] != "predictions" or unknown:
        raise ValueError(f"model outputs {names} are not a keras_cnn classifier with auxiliary heads "
                         f"(expected 'predictions' then some of {sorted(AUX_LOSS_WEIGHTS)}).")
    return {"loss": {n: loss for n in names},
            "loss_weights": {n: 1.0 if n == "predictions" else AUX_LOSS_WEIGHTS[n] for n in names}}


def _check_aux(aux_logits, head):
    _validate.check_bool("aux_logits", aux_logits)
    if aux_logits and not head.include_top:
        raise ValueError("aux_logits=True adds classifiers, so it needs include_top=True; received "
                         "include_top=False.")
    return aux_logits


def _aux_pool(x, name, size=5, strides=3):
    """The auxiliary heads' 5x5/3 average pooling; on maps smaller than 5 (small inputs) the window shrinks to the
    map, as TF-slim's ``_reduced_kernel_size_for_small_input`` does, so the heads work at every input size."""
    height, width = x.shape[1:3]
    if height is None or width is None:
        raise ValueError("aux_logits=True needs a fixed input height and width (the auxiliary classifiers "
                         "flatten their map); pass input_shape with both.")
    window = (min(size, height), min(size, width))
    return keras.layers.AveragePooling2D(window, strides=strides, name=name)(x)


@dataclasses.dataclass(frozen=True)
class GoogLeNetSpec:
    """GoogLeNet (Szegedy et al., "Going deeper with convolutions", 2015), Table 1 / seed 003 §4.1."""

    modules: tuple  # (module, (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)) in order
    pool_before: tuple = ("4a", "5a")  # modules preceded by 3x3/2 max pooling
    aux_after: tuple = (("4a", "aux1"), ("4d", "aux2"))  # (module, auxiliary classifier it feeds), §5


GOOGLENET = GoogLeNetSpec(modules=(
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
))


def googlenet_module(row, kernel_5x5=5):
    """One GoogLeNet Inception module from its Table 1 row."""
    n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj = row
    return ((Conv(n1x1, 1),),
            (Conv(n3x3red, 1), Conv(n3x3, 3)),
            (Conv(n5x5red, 1), Conv(n5x5, kernel_5x5)),
            (Pool("max"), Conv(pool_proj, 1)))


@register("googlenet", family="inception", default_input=(224, 224, 3), min_input=32, spec=GOOGLENET)
def googlenet(x, head, *, spec, aux_logits=False, batch_norm=False, lrn=None, kernel_5x5=5, pool4_size=3,
              padding="same", aux_pooling="window", dropout=0.4, aux_dropout=0.7):
    """GoogLeNet / Inception v1 (Szegedy et al., 2015): 6,998,552 parameters at 1000 classes.

    Stem 7x7/2 conv, 3x3/2 max pool, LRN, 1x1 + 3x3 conv, LRN, 3x3/2 max pool; modules 3a-5b of Table 1 with
    3x3/2 max pooling before 4a and 5a; global average pooling (the paper's 7x7 average pool at 224), dropout 0.4
    and the classifier. Max pools pad "same", so 224 gives the paper's 112-56-28-14-7 maps.

    Options: ``aux_logits`` adds the auxiliary classifiers after 4a and 4d (5x5/3 average pool, 1x1 conv 128,
    FC 1024, dropout ``aux_dropout`` 0.7, classifier): outputs ``[predictions, aux1_predictions,
    aux2_predictions]``, trained with loss weights 1, 0.3, 0.3 (:func:`aux_compile_kwargs`) and removed for
    inference by :func:`inference_model`. ``batch_norm`` puts BN (epsilon 1e-3) after every convolution, without
    bias, as TF-slim and torchvision; ``lrn`` (default: only without batch norm) is the paper's local response
    normalisation (Caffe's n=5, alpha=1e-4/n, beta=0.75, k=1); ``kernel_5x5=3`` gives the "5x5" branch 3x3
    convolutions, as TF-slim's inception_v1 and torchvision (pytorch/vision#906); ``pool4_size=2`` makes the
    pool before 5a 2x2/2 (TF-slim, torchvision) instead of the paper's 3x3/2; ``padding="symmetric"`` is
    PyTorch's and Caffe's form: the 7x7/2 stem convolution pads 3 on every side (TensorFlow's "same" pads 2
    before and 3 after) and the stride-2 max pools round up without padding (``ceil_mode=True``,
    :class:`keras_cnn.layers.CeilModeMaxPooling2D`; "same" agrees only on even maps); ``aux_pooling="adaptive"``
    pools the auxiliary heads' input to 4x4 as torchvision (``adaptive_avg_pool2d``) instead of the paper's
    5x5/3 window.

    torchvision's GoogLeNet (6,624,904 parameters) is ``batch_norm=True, kernel_5x5=3, pool4_size=2,
    padding="symmetric", aux_pooling="adaptive"``: the same function as ``torchvision.models.googlenet`` with
    ``transform_input=False`` (its pretrained model's ``transform_input=True`` maps ImageNet-normalised input to
    [-1, 1], which this model takes directly: :mod:`keras_cnn.weights`).
    """
    aux_logits = _check_aux(aux_logits, head)
    _validate.check_bool("batch_norm", batch_norm)
    lrn = not batch_norm if lrn is None else _validate.check_bool("lrn", lrn)
    _validate.check_choice("kernel_5x5", kernel_5x5, (5, 3))
    _validate.check_choice("pool4_size", pool4_size, (3, 2))
    _validate.check_choice("padding", padding, PADDINGS)
    _validate.check_choice("aux_pooling", aux_pooling, ("window", "adaptive"))
    dropout = _validate.check_rate("dropout", dropout)
    aux_dropout = _validate.check_rate("aux_dropout", aux_dropout)
    conv = ConvBN(batch_norm=batch_norm, scale=True, epsilon=1e-3)

    def max_pool(x, size, name):
        if padding == "symmetric":
            return CeilModeMaxPooling2D(size, strides=2, name=name)(x)
        return keras.layers.MaxPooling2D(size, strides=2, padding="same", name=name)(x)

    x = conv(x, 64, 7, strides=2, padding=padding, name="conv1_7x7_s2")
    x = max_pool(x, 3, "pool1_3x3_s2")
    if lrn:
        x = _caffe_lrn("pool1_norm1")(x)
    x = conv(x, 64, 1, name="conv2_3x3_reduce")
    x = conv(x, 192, 3, name="conv2_3x3")
    if lrn:
        x = _caffe_lrn("conv2_norm2")(x)
    x = max_pool(x, 3, "pool2_3x3_s2")
    aux, aux_after = [], dict(spec.aux_after)
    for module, row in spec.modules:
        if module in spec.pool_before:
            stage = int(module[0]) - 1
            size = pool4_size if stage == 4 else 3
            x = max_pool(x, size, f"pool{stage}_{size}x{size}_s2")
        x = inception_module(x, googlenet_module(row, kernel_5x5), name=f"inception_{module}", conv=conv)
        if aux_logits and module in aux_after:
            aux.append(_googlenet_aux(x, head, aux_after[module], conv, aux_dropout, aux_pooling))
    outputs = head.pooled(x, dropout=dropout)
    return [outputs, *aux] if aux_logits else outputs


def _caffe_lrn(name):
    # Caffe's LRN divides alpha by the window size n; our layer uses the formula's alpha, so alpha = 1e-4 / 5.
    return LocalResponseNormalization(size=5, alpha=1e-4 / 5, beta=0.75, k=1.0, name=name)


def _googlenet_aux(x, head, name, conv, dropout, pooling):
    """GoogLeNet's auxiliary classifier (paper §5): 5x5/3 avg pool (torchvision: adaptive to 4x4), 1x1 conv 128,
    FC 1024, dropout, FC."""
    if pooling == "adaptive":
        x = AdaptiveAveragePooling2D(4, name=f"{name}_avgpool")(x)
    else:
        x = _aux_pool(x, f"{name}_avgpool")
    x = conv(x, 128, 1, name=f"{name}_conv")
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    x = keras.layers.Dense(1024, activation="relu", name=f"{name}_fc")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return keras.layers.Dense(head.classes, activation=head.classifier_activation, name=f"{name}_predictions")(x)


@dataclasses.dataclass(frozen=True)
class InceptionV2Spec:
    """BN-Inception (Ioffe & Szegedy 2015, Fig. 5; seed 003 §4.2, "Inception v2")."""

    # (module, (#1x1, #3x3 reduce, #3x3, #double 3x3 reduce, #double 3x3, pool, pool proj, stride)) in order.
    # 3c and 4e are stride-2 modules: no 1x1 branch, the last 3x3 of both 3x3 branches and the max pooling have
    # stride 2, the pooling is passed through (no proj).
    modules: tuple


INCEPTION_V2 = InceptionV2Spec(modules=(
    ("3a", (64, 64, 64, 64, 96, "avg", 32, 1)),
    ("3b", (64, 64, 96, 64, 96, "avg", 64, 1)),
    ("3c", (0, 128, 160, 64, 96, "max", 0, 2)),
    ("4a", (224, 64, 96, 96, 128, "avg", 128, 1)),
    ("4b", (192, 96, 128, 96, 128, "avg", 128, 1)),
    ("4c", (160, 128, 160, 128, 160, "avg", 128, 1)),
    ("4d", (96, 128, 192, 160, 192, "avg", 128, 1)),
    ("4e", (0, 128, 192, 192, 256, "max", 0, 2)),
    ("5a", (352, 192, 320, 160, 224, "avg", 128, 1)),
    ("5b", (352, 192, 320, 192, 224, "max", 128, 1)),
))


def bn_inception_module(row):
    """One BN-Inception module from its Fig. 5 row (the 5x5 branch is two 3x3 convolutions)."""
    n1x1, n3x3red, n3x3, d3x3red, d3x3, pool, proj, stride = row
    last = {"strides": stride, "padding": "same"}
    branches = [] if not n1x1 else [(Conv(n1x1, 1),)]
    branches.append((Conv(n3x3red, 1), Conv(n3x3, 3, **last)))
    branches.append((Conv(d3x3red, 1), Conv(d3x3, 3), Conv(d3x3, 3, **last)))
    pooling = Pool(pool, 3, stride)
    branches.append((pooling, Conv(proj, 1)) if proj else (pooling,))
    return tuple(branches)


@register("inception_v2", family="inception", default_input=(224, 224, 3), min_input=32, spec=INCEPTION_V2)
def inception_v2(x, head, *, spec, dropout=0.0):
    """BN-Inception (Ioffe & Szegedy, "Batch Normalization", 2015), the seed's "Inception v2": 11,285,224
    parameters at 1000 classes.

    GoogLeNet with batch normalisation after every convolution (no bias, epsilon 1e-5), 5x5 convolutions
    replaced by two 3x3, three 28x28 modules (3a-3c), average or max pooling per module, no pooling layers
    between stages: modules 3c and 4e reduce the grid with stride 2. The paper removed dropout (``dropout=0``).
    """
    dropout = _validate.check_rate("dropout", dropout)
    conv = ConvBN(batch_norm=True, scale=True, epsilon=1e-5)
    x = conv(x, 64, 7, strides=2, name="conv1_7x7_s2")
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_3x3_s2")(x)
    x = conv(x, 64, 1, name="conv2_3x3_reduce")
    x = conv(x, 192, 3, name="conv2_3x3")
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool2_3x3_s2")(x)
    for module, row in spec.modules:
        x = inception_module(x, bn_inception_module(row), name=f"inception_{module}", conv=conv)
    return head.pooled(x, dropout=dropout)


# Inception-v3 (Szegedy et al. 2016) as released in TF-slim and keras.applications.InceptionV3 (module names of
# TF-slim / torchvision). Where the release differs from the paper's Figure 5 module, the 35x35 modules keep a
# 1x1 -> 5x5 branch (48 -> 64) beside the double 3x3 one.
def _v3_a(pool_proj):
    return ((Conv(64, 1),),
            (Conv(48, 1), Conv(64, 5)),
            (Conv(64, 1), Conv(96, 3), Conv(96, 3)),
            (Pool("avg"), Conv(pool_proj, 1)))


def _v3_c(c7):
    """17x17 module (paper Fig. 6): 7x7 convolutions factorised into 1x7 and 7x1."""
    return ((Conv(192, 1),),
            (Conv(c7, 1), *asymmetric(7, c7, 192)),
            (Conv(c7, 1), Conv(c7, (7, 1)), Conv(c7, (1, 7)), Conv(c7, (7, 1)), Conv(192, (1, 7))),
            (Pool("avg"), Conv(192, 1)))


def _v3_e():
    """8x8 module with expanded filter bank outputs (paper Fig. 7)."""
    fork = Split((Conv(384, (1, 3)), Conv(384, (3, 1))))
    return ((Conv(320, 1),),
            (Conv(384, 1), fork),
            (Conv(448, 1), Conv(384, 3), fork),
            (Pool("avg"), Conv(192, 1)))


def v3_stem(x, conv):
    """The Inception-v3 / Inception-ResNet-v2 stem up to the 35x35 grid (TF-slim names)."""
    x = stem_to_4a(x, conv)
    return keras.layers.MaxPooling2D(3, strides=2, name="maxpool_5a_3x3")(x)


def stem_to_4a(x, conv):
    """The stem Inception-v3 and both Inception-ResNets share, up to ``conv2d_4a_3x3`` (TF-slim names)."""
    x = conv(x, 32, 3, strides=2, padding="valid", name="conv2d_1a_3x3")
    x = conv(x, 32, 3, padding="valid", name="conv2d_2a_3x3")
    x = conv(x, 64, 3, name="conv2d_2b_3x3")
    x = keras.layers.MaxPooling2D(3, strides=2, name="maxpool_3a_3x3")(x)
    x = conv(x, 80, 1, padding="valid", name="conv2d_3b_1x1")
    return conv(x, 192, 3, padding="valid", name="conv2d_4a_3x3")


V3_STEM_CHANNELS = 192  # conv2d_4a_3x3


def module_channels(modules, channels):
    """``{module: output channels}`` of a chain of ``(module, branches)`` whose input has ``channels``: each branch
    adds its last op's filters (a fork's summed), or the input's channels when it ends with pooling."""
    result = {}
    for module, branches in modules:
        total = 0
        for branch in branches:
            last = branch[-1]
            total += (channels if isinstance(last, Pool) else
                      sum(conv.filters for conv in last.convs) if isinstance(last, Split) else last.filters)
        result[module] = channels = total
    return result


@dataclasses.dataclass(frozen=True)
class InceptionV3Spec:
    """Inception-v3 (Szegedy et al. 2016) as released (TF-slim); SE-Inception-v3 (Hu et al. 2018, Table 2)."""

    modules: tuple  # (module, branches) after the stem, in order
    aux_after: str = "mixed_6e"  # the module the auxiliary classifier reads (the 17x17 grid, paper Fig. 8)
    se_reduction: int | None = None  # SE block with ratio r after every module (Hu et al.'s SE-Inception)

    def __post_init__(self):
        check_reduction(self.se_reduction, min(module_channels(self.modules, V3_STEM_CHANNELS).values()), "module")


INCEPTION_V3 = InceptionV3Spec(modules=(
    ("mixed_5b", _v3_a(32)),
    ("mixed_5c", _v3_a(64)),
    ("mixed_5d", _v3_a(64)),
    # grid reduction 35 -> 17 (paper Fig. 10: stride-2 convolutions beside stride-2 pooling)
    ("mixed_6a", ((Conv(384, 3, 2, "valid"),),
                  (Conv(64, 1), Conv(96, 3), Conv(96, 3, 2, "valid")),
                  (Pool("max", 3, 2, "valid"),))),
    ("mixed_6b", _v3_c(128)),
    ("mixed_6c", _v3_c(160)),
    ("mixed_6d", _v3_c(160)),
    ("mixed_6e", _v3_c(192)),
    # grid reduction 17 -> 8
    ("mixed_7a", ((Conv(192, 1), Conv(320, 3, 2, "valid")),
                  (Conv(192, 1), *asymmetric(7, 192, 192), Conv(192, 3, 2, "valid")),
                  (Pool("max", 3, 2, "valid"),))),
    ("mixed_7b", _v3_e()),
    ("mixed_7c", _v3_e()),
))


@register("inception_v3", family="inception", default_input=(299, 299, 3), min_input=75, spec=INCEPTION_V3)
def inception_v3(x, head, *, spec, aux_logits=False, batch_norm_scale=False, count_include_pad=False, dropout=0.2):
    """Inception-v3 (Szegedy et al., "Rethinking the Inception Architecture", 2016): 23,817,352 trainable
    parameters at 1000 classes, exactly keras.applications.InceptionV3 (and the TF-slim release).

    Stem of 3x3 convolutions, three 35x35 modules, grid reduction, four 17x17 modules with factorised 7x7
    convolutions, grid reduction, two 8x8 modules, global average pooling, dropout 0.2 (TF-slim's keep 0.8),
    classifier. BN after every convolution (epsilon 1e-3). A spec row with ``se_reduction`` (16 in
    ``se_inception_v3``, Hu et al.'s SE-Inception) adds a squeeze-and-excitation block after every module; at most
    256, the narrowest module's channels (``mixed_5b``).

    Options: ``aux_logits`` adds the auxiliary classifier on the 17x17 grid (after ``mixed_6e``; 5x5/3 avg pool,
    1x1 conv 128, 5x5 conv 768, classifier; batch-normalised as the paper's "BN-auxiliary"): outputs
    ``[predictions, aux_predictions]``, loss weight 0.4. ``batch_norm_scale`` adds BN's gamma: False as TF-slim
    and keras.applications, True as torchvision and timm (23,834,568 parameters). ``count_include_pad`` makes the
    modules' 3x3 average pools divide by 9 at the border too, counting the zero padding: False as TF-slim and
    keras.applications, True as torchvision and timm (``F.avg_pool2d(x, 3, 1, padding=1)``). torchvision's and
    timm's Inception-v3 is ``batch_norm_scale=True, count_include_pad=True`` (BN epsilon 1e-3 in all of them; the
    auxiliary head equals theirs at 299, where its last convolution sees the 5x5 map they assume).
    """
    aux_logits = _check_aux(aux_logits, head)
    _validate.check_bool("batch_norm_scale", batch_norm_scale)
    _validate.check_bool("count_include_pad", count_include_pad)
    dropout = _validate.check_rate("dropout", dropout)
    conv = ConvBN(batch_norm=True, scale=batch_norm_scale, epsilon=1e-3)
    x = v3_stem(x, conv)
    aux = None
    for module, branches in spec.modules:
        x = inception_module(x, branches, name=module, conv=conv, count_include_pad=count_include_pad)
        if spec.se_reduction:
            x = squeeze_excite(x, x.shape[-1] // spec.se_reduction, name=f"{module}_se")
        if aux_logits and module == spec.aux_after:
            aux = _v3_aux(x, head, conv)
    outputs = head.pooled(x, dropout=dropout)
    return [outputs, aux] if aux_logits else outputs


def _v3_aux(x, head, conv):
    """Inception-v3's auxiliary classifier (paper Fig. 8): 5x5/3 avg pool, 1x1 conv 128, then the paper's
    "fc 768" as a convolution over the whole 5x5 map (TF-slim; a smaller map at small inputs), classifier."""
    x = _aux_pool(x, "aux_avgpool")
    x = conv(x, 128, 1, name="aux_conv1")
    x = conv(x, 768, tuple(x.shape[1:3]), padding="valid", name="aux_conv2")
    x = keras.layers.Flatten(name="aux_flatten")(x)
    return keras.layers.Dense(head.classes, activation=head.classifier_activation, name="aux_predictions")(x)


register("se_inception_v3", family="inception", default_input=(299, 299, 3), min_input=75,
         spec=dataclasses.replace(INCEPTION_V3, se_reduction=16))(inception_v3)
