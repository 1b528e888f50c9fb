"""The residual family: torchvision's ResNets and ResNeXts, timm's ``resnet50`` and its Cadene SENet ports
(``legacy_se*``), keras.applications' ResNet*/ResNet*V2.

keras_cnn layers are ``stem_conv``, ``stage<s>_block<b>_conv<i>`` (+ ``_bn``), ``..._shortcut`` (+ ``_bn``),
``..._se_reduce``/``_se_expand``, ``..._preact_bn``, ``post_bn`` and ``predictions``; each source's rule renames
them. The torchvision/timm forms are keras_cnn's defaults (symmetric padding, BN epsilon 1e-5, torchvision's
stride in the 3x3); keras.applications' need ``stride_in_1x1`` (v1) and the TF-slim v2 form (``downsample``,
``stem_norm``, ``conv_bias``).
"""

import re

from keras_cnn.layers.conv import BN_EPSILON
from keras_cnn.models.resnet import VARIANTS
from keras_cnn.weights._catalog import CAFFE, INCEPTION, Upstream, imagenet, register_upstream
from keras_cnn.weights._mapping import Source, folded_bias_mean, input_channels_reversed, keras_rule, torch_rule

_UNIT = re.compile(r"stage(\d+)_block(\d+)_(.+)")
# keras_cnn layer suffix of a unit -> PyTorch module inside torchvision's/Cadene's block
_TORCH_UNIT = {"shortcut": "downsample.0", "shortcut_bn": "downsample.1", "se_reduce": "se_module.fc1",
               "se_expand": "se_module.fc2", **{f"conv{i}": f"conv{i}" for i in (1, 2, 3)},
               **{f"conv{i}_bn": f"bn{i}" for i in (1, 2, 3)}}


def _torch_rename(stem, classifier):
    """keras_cnn layer -> PyTorch module path: units are ``layer<s>.<b - 1>.<module>`` in both torchvision and
    Cadene's SENet; ``stem`` maps the stem layers, ``classifier`` is the final Linear's name."""
    def rename(layer):
        if layer == "predictions":
            return classifier
        match = _UNIT.fullmatch(layer)
        if match is None:
            return stem.get(layer)
        stage, block, part = match.groups()
        module = _TORCH_UNIT.get(part)
        return None if module is None else f"layer{stage}.{int(block) - 1}.{module}"
    return rename


_TORCHVISION_STEM = {"stem_conv": "conv1", "stem_conv_bn": "bn1"}
# Cadene's layer0: conv1/bn1 (7x7 stem) or conv1-3/bn1-3 (SENet-154's three 3x3 convolutions)
_CADENE_STEM = {"stem_conv": "layer0.conv1", "stem_conv_bn": "layer0.bn1",
                **{f"stem_conv{i}": f"layer0.conv{i}" for i in (1, 2, 3)},
                **{f"stem_conv{i}_bn": f"layer0.bn{i}" for i in (1, 2, 3)}}


def _last_unit(model, prefix="", module="conv3"):
    """The name of a tensor of the last unit of stage 3, which tells the depths apart (signatures)."""
    spec = VARIANTS[model]
    module = "conv2" if spec.block == "basic" and module == "conv3" else module
    return f"{prefix}layer3.{spec.depths[2] - 1}.{module}.weight"


# torchvision: the DEFAULT weights' transforms (IMAGENET1K_V2 where there is one: resize 232, crop 224).
_TORCHVISION = {"resnet18": 256, "resnet34": 256, "resnet50": 232, "resnet101": 232, "resnet152": 232,
                "resnext50_32x4d": 232, "resnext101_32x8d": 232, "resnext101_64x4d": 232}
_V1_NOTE = "IMAGENET1K_V1 files of this model were evaluated after resizing to 256, not 232."
_DEEP = ("101", "152", "154")  # rows that repeat the rules of a 50-layer CI row: goldens in the slow suite
# The seeded deep nets amplify float32 rounding: torch float32 alone is 0.7e-4 to 4e-4 from torch float64 for the
# 101-154-layer rows at 64x64, so their goldens are float64 on both sides, where the conversion is exact.


def _golden(name):
    deep = any(depth in name for depth in _DEEP)
    return {"golden_input": 64, "slow": deep, "golden_dtype": "float64" if deep else "float32"}


for _name, _resize in _TORCHVISION.items():
    register_upstream(Upstream(
        source="torchvision", name=_name, model=_name,
        mapping=torch_rule(_torch_rename(_TORCHVISION_STEM, "fc")),
        signature=("conv1.weight", _last_unit(_name), "fc.weight"),
        preprocessing=imagenet(224, _resize), head=("fc.*",), note=_V1_NOTE if _resize == 232 else "",
        reference=f"torchvision.models.{_name}", **_golden(_name)))

# timm's resnet50 has torchvision's names and function; its default tag (a1_in1k) was evaluated at crop_pct
# 0.95 with bicubic resizing. Its file is told from torchvision's only by weights_source="timm".
register_upstream(Upstream(
    source="timm", name="resnet50", model="resnet50", mapping=torch_rule(_torch_rename(_TORCHVISION_STEM, "fc")),
    signature=("conv1.weight", _last_unit("resnet50"), "fc.weight"),
    preprocessing=imagenet(224, 235, interpolation="bicubic"), head=("fc.*",),
    note="Same tensor names as torchvision's resnet50: pass weights_source='timm' for timm's preprocessing.",
    reference="timm:resnet50", **_golden("resnet50")))

# timm's legacy SENets are Cadene's pretrainedmodels ports (Caffe: ceil-mode stem pooling, SE-ResNets stride the
# first 1x1): keras_cnn's se_* rows follow them.
_CADENE = {"legacy_seresnet50": "se_resnet50", "legacy_seresnet101": "se_resnet101",
           "legacy_seresnet152": "se_resnet152", "legacy_seresnext50_32x4d": "se_resnext50_32x4d",
           "legacy_seresnext101_32x4d": "se_resnext101_32x4d", "legacy_senet154": "senet154"}

for _name, _model in _CADENE.items():
    register_upstream(Upstream(
        source="timm", name=_name, model=_model, mapping=torch_rule(_torch_rename(_CADENE_STEM, "last_linear")),
        signature=("layer0.conv1.weight", _last_unit(_model, module="se_module.fc1"), "last_linear.weight"),
        preprocessing=imagenet(224), head=("last_linear.*",),
        reference=f"timm:{_name}", **_golden(_name)))


def _keras_layer(layer):
    """keras_cnn layer -> keras.applications layer: ``conv1_conv``/``conv1_bn``, ``conv<s + 1>_block<b>_<i>_conv``
    (``_0_`` the projection shortcut), ``..._preact_bn``, ``post_bn``, ``predictions``."""
    if layer in ("stem_conv", "stem_conv_bn"):
        return "conv1_" + ("bn" if layer.endswith("_bn") else "conv")
    match = _UNIT.fullmatch(layer)
    if match is None:
        return layer if layer in ("post_bn", "predictions") else None
    stage, block, part = match.groups()
    index = {"shortcut": "0", "shortcut_bn": "0_bn", "preact_bn": "preact_bn",
             **{f"conv{i}": str(i) for i in (1, 2, 3)}, **{f"conv{i}_bn": f"{i}_bn" for i in (1, 2, 3)}}.get(part)
    if index is None:
        return None
    return f"conv{int(stage) + 1}_block{block}_{index}" + ("" if index.endswith("bn") else "_conv")


KERAS_EPSILON = 1.001e-5  # keras.applications' ResNets' BatchNormalization epsilon


def _keras_bn(path):
    """A keras.applications BatchNormalization for keras_cnn's epsilon: ``v + 1.001e-5 = v' + 1e-5`` holds for
    the moving variance ``v' = v + 1e-8``, so the function is unchanged."""
    def variance(array, shape):
        return array + (KERAS_EPSILON - BN_EPSILON)
    return {"moving_variance": Source((f"{path}/moving_variance",), variance),
            **{v: Source((f"{path}/{v}",)) for v in ("gamma", "beta", "moving_mean")}}


def _keras_v2_rename(layer):
    path = _keras_layer(layer)
    return _keras_bn(path) if path is not None and path.endswith("_bn") else path


def _keras_v1_rename(layer):
    """keras.applications' ResNet v1: every convolution has a bias before its BN, folded into the BN's moving mean;
    the stem convolution saw BGR ("caffe" preprocessing)."""
    path = _keras_layer(layer)
    if path is None:
        return None
    if path.endswith("_bn"):
        conv = path[:-len("bn")] + "conv"
        return {**_keras_bn(path), "moving_mean": folded_bias_mean(f"{path}/moving_mean", f"{conv}/bias")}
    if layer == "stem_conv":
        return {"kernel": input_channels_reversed(Source((f"{path}/kernel",)))}
    return path


_KERAS_V1 = {"ResNet50": "resnet50", "ResNet101": "resnet101", "ResNet152": "resnet152"}
_KERAS_V2 = {"ResNet50V2": "resnet50_v2", "ResNet101V2": "resnet101_v2", "ResNet152V2": "resnet152_v2"}
# TF-slim's resnet_v2: downsampling in the last unit of stages 1-3, a stem convolution without BN-ReLU (the
# first unit pre-activates) and biases on the convolutions no BN follows
KERAS_V2_OPTIONS = {"downsample": "last", "stem_norm": False, "conv_bias": True}


def _keras_last(model, suffix):
    return f"conv4_block{VARIANTS[model].depths[2]}_{suffix}"


for _name, _model in _KERAS_V1.items():
    register_upstream(Upstream(
        source="keras.applications", name=_name, model=_model, mapping=keras_rule(_keras_v1_rename),
        signature=("conv1_conv/kernel", "conv2_block1_3_bn/gamma", _keras_last(_model, "3_conv/kernel")),
        preprocessing=imagenet(224, 256, **CAFFE), options={"stride_in_1x1": True}, head=("predictions/*",)))

for _name, _model in _KERAS_V2.items():
    register_upstream(Upstream(
        source="keras.applications", name=_name, model=_model, mapping=keras_rule(_keras_v2_rename),
        signature=("conv1_conv/kernel", "post_bn/gamma", _keras_last(_model, "preact_bn/gamma")),
        preprocessing=imagenet(224, 256, **INCEPTION), options=KERAS_V2_OPTIONS, head=("predictions/*",)))
