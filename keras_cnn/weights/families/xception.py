"""Xception: keras.applications' ``Xception`` (the paper's Keras model, keras_cnn's defaults) and timm's
``legacy_xception`` (its PyTorch port: symmetric max-pool padding, BN epsilon 1e-5)."""

import re

from keras_cnn.models.xception import XCEPTION
from keras_cnn.weights._catalog import INCEPTION, Upstream, imagenet, register_upstream
from keras_cnn.weights._mapping import keras_rule, torch, torch_rule

# keras.applications names the four shortcut convolutions and their BN automatically (conv2d_<n>,
# batch_normalization_<n>, numbered by whatever the saving session had built before): their widths tell them apart
_SHORTCUT_WIDTHS = {widths[-1]: block for block, widths in (*XCEPTION.entry, XCEPTION.exit)}


def _keras_names(tensors):
    """The file's tensors with the shortcut layers named as keras_cnn names them (``block3_shortcut/kernel``,
    ``block3_shortcut_bn/gamma``); every other layer is named as keras_cnn's already."""
    renamed = {}
    for name, value in tensors.items():
        layer, _, variable = name.rpartition("/")
        if not layer.startswith("block") and layer != "predictions" and value.shape[-1] in _SHORTCUT_WIDTHS:
            suffix = "" if variable == "kernel" else "_bn"  # a 1x1 kernel (1, 1, in, out), else BN vectors
            layer = f"{_SHORTCUT_WIDTHS[value.shape[-1]]}_shortcut{suffix}"
        renamed[f"{layer}/{variable}"] = value
    return renamed


register_upstream(Upstream(
    source="keras.applications", name="Xception", model="xception", mapping=keras_rule(lambda layer: layer),
    renamed=_keras_names, signature=("block1_conv1/kernel", "block2_sepconv1/depthwise_kernel",
                                     "block14_sepconv2/pointwise_kernel"),
    preprocessing=imagenet(299, **INCEPTION), head=("predictions/*",)))

def _separable(path):
    """timm's SeparableConv2d: the depthwise ``conv1`` and the ``pointwise`` convolution, separate tensors."""
    return {"depthwise_kernel": torch(f"{path}.conv1.weight"), "pointwise_kernel": torch(f"{path}.pointwise.weight")}


# timm: conv1/bn1, conv2/bn2 the stem; conv3/bn3, conv4/bn4 the exit flow's separable convolutions; keras_cnn's
# blocks 2-13 are its block1-block12 (below)
_TIMM_FIXED = {"block1_conv1": "conv1", "block1_conv1_bn": "bn1", "block1_conv2": "conv2", "block1_conv2_bn": "bn2",
               "block14_sepconv1": _separable("conv3"), "block14_sepconv1_bn": "bn3",
               "block14_sepconv2": _separable("conv4"), "block14_sepconv2_bn": "bn4", "predictions": "fc"}
_BLOCK = re.compile(r"block(\d+)_(?:shortcut(_bn)?|sepconv(\d)(_bn)?)")


def _timm_path(layer):
    """keras_cnn layer -> timm module path (a separable convolution: ``{variable: Source}``). A timm block is a
    ``rep`` Sequential of [ReLU], separable convolution, BN per convolution (block1 starts without the ReLU), and
    ``skip``/``skipbn`` where it downsamples."""
    match = _BLOCK.fullmatch(layer)
    if layer in _TIMM_FIXED or match is None:
        return _TIMM_FIXED.get(layer)
    block, shortcut_bn, index, bn = int(match[1]), match[2], match[3], match[4]
    if index is None:
        return f"block{block - 1}.{'skipbn' if shortcut_bn else 'skip'}"
    position = 3 * (int(index) - 1) + (block != 2)
    return f"block{block - 1}.rep.{position + 1}" if bn else _separable(f"block{block - 1}.rep.{position}")


register_upstream(Upstream(
    source="timm", name="legacy_xception", model="xception", mapping=torch_rule(_timm_path),
    options={"padding": "symmetric", "bn_epsilon": 1e-5},
    signature=("conv1.weight", "block1.rep.0.conv1.weight", "block12.skip.weight", "conv4.pointwise.weight"),
    preprocessing=imagenet(299, 333, interpolation="bicubic", **INCEPTION), head=("fc.*",),
    reference="timm:legacy_xception", golden_input=85))
