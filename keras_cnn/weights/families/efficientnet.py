"""EfficientNet B0-B7: torchvision's ``efficientnet_b0``-``b7``, timm's ``tf_efficientnet_b0``-``b7`` and
``efficientnet_b0``-``b5``, keras.applications' ``EfficientNetB0``-``B7``.

torchvision's models pad symmetrically (PyTorch); its B0-B4 were trained in PyTorch with BatchNorm epsilon 1e-5,
its B5-B7 weights are ports of the TensorFlow checkpoints built with epsilon 1e-3, but still run with PyTorch's
padding, so keras_cnn matches them with ``padding="symmetric"`` as torchvision computes them. timm's ``tf_*`` ports
and keras.applications are the TensorFlow form (the defaults); timm's own ``efficientnet_b*`` the PyTorch form, with
the same tensors as its ``tf_*`` (``weights_source`` tells them apart). Block rules are MobileNet's
(:mod:`keras_cnn.weights.families.mobilenet`).
"""

import math
import re

import numpy as np

from keras_cnn.models.efficientnet import COMPOUND_SCALING
from keras_cnn.weights._catalog import INCEPTION, IMAGENET_MEAN, IMAGENET_STD, Upstream, imagenet, register_upstream
from keras_cnn.weights._mapping import Source, keras_rule, torch_rule
from keras_cnn.weights.families.mobilenet import (PYTORCH, SYMMETRIC, keras_names, layer_names, same_tensors,
                                                  timm_block, torchvision_block)

_STAGE = r"stage(\d+)_block(\d+)"

# torchvision's transforms of the DEFAULT weights: (crop, resize, interpolation); B1's DEFAULT is IMAGENET1K_V2
_TORCHVISION_EVAL = {"efficientnet_b0": (224, 256, "bicubic"), "efficientnet_b1": (240, 255, "bilinear"),
                     "efficientnet_b2": (288, 288, "bicubic"), "efficientnet_b3": (300, 320, "bicubic"),
                     "efficientnet_b4": (380, 384, "bicubic"), "efficientnet_b5": (456, 456, "bicubic"),
                     "efficientnet_b6": (528, 528, "bicubic"), "efficientnet_b7": (600, 600, "bicubic")}
# timm's pretrained_cfg crop_pct of the default (ns_jft_in1k) tf_efficientnet weights; timm resizes to
# floor(size / crop_pct)
_TIMM_CROP = {"efficientnet_b0": 0.875, "efficientnet_b1": 0.882, "efficientnet_b2": 0.890,
              "efficientnet_b3": 0.904, "efficientnet_b4": 0.922, "efficientnet_b5": 0.934,
              "efficientnet_b6": 0.942, "efficientnet_b7": 0.949}
# timm's own PyTorch-trained EfficientNets (default tags: ra_in1k, ra4_e3600_r240_in1k, ra_in1k, ra2_in1k,
# ra2_in1k, sw_in12k_ft_in1k): (input size, crop_pct, mean and std); B6 and B7 have no such weights
_TIMM_PYTORCH = {"efficientnet_b0": (224, 0.875, {}), "efficientnet_b1": (240, 0.9, INCEPTION),
                 "efficientnet_b2": (256, 0.875, {}), "efficientnet_b3": (288, 0.875, {}),
                 "efficientnet_b4": (320, 0.875, {}), "efficientnet_b5": (448, 1.0, {})}
_CI = "efficientnet_b0"  # the one variant whose golden runs in CI; the others repeat its rules, deeper and wider
# Golden input 96 (maps 48, 24, 12, 6, 3; the strided windows meet even maps, where the paddings differ): at 64 the
# seeded B1-B7 are so ill-conditioned on their 2x2 maps that the upstream's own float32 logits are 1e-4 to 3e-3
# away from its float64 ones (measured with torch), so no float32 port can be held to 1e-4 there; timm's B7 is
# so at 96 too (1.3e-2), not at 128 (1.4e-5).
_GOLDEN_INPUT = 96
_TIMM_B7_GOLDEN_INPUT = 128


def _stage_position(block):
    """``(row, index)`` of ``stage<row>_block<i>``, both from 0: the upstreams' nested stage numbering."""
    row, index = block[len("stage"):].split("_block")
    return int(row) - 1, int(index) - 1


def _torchvision(keys):
    """torchvision: ``features.0`` stem, ``features.<row>.<index>.block`` (rows 1-7), ``features.8`` last
    convolution, ``classifier.1`` (after dropout)."""
    def block(position, name, parts):
        row, index = _stage_position(name)
        return torchvision_block(f"features.{row + 1}.{index}", parts)
    names = layer_names(keys, ("features.0.0", "features.0.1"), ("features.8.0", "features.8.1"), block)
    return torch_rule({**names, "predictions": "classifier.1"}.get)(keys)


def _timm(keys):
    """timm: ``conv_stem``/``bn1``, ``blocks.<row>.<index>`` (row 0: depthwise separable), ``conv_head``/``bn2``,
    ``classifier``."""
    names = layer_names(keys, ("conv_stem", "bn1"), ("conv_head", "bn2"),
                        lambda position, name, parts: timm_block("blocks.{}.{}".format(*_stage_position(name)), parts))
    return torch_rule({**names, "predictions": "classifier"}.get)(keys)


def _keras_block(position, name, parts):
    row, index = _stage_position(name)
    prefix = f"block{row + 1}{chr(ord('a') + index)}_"
    return {"expand": f"{prefix}expand_conv", "expand_bn": f"{prefix}expand_bn", "dwconv": f"{prefix}dwconv",
            "dwconv_bn": f"{prefix}bn", "se_reduce": f"{prefix}se_reduce", "se_expand": f"{prefix}se_expand",
            "project": f"{prefix}project_conv", "project_bn": f"{prefix}project_bn"}


def _keras_renamed(tensors):
    """:func:`keras_names`, and ``normalization`` for the Normalization layer Keras named automatically
    (``normalization_<n>`` when the saving session had built others before)."""
    return {re.sub(r"^normalization_\d+/", "normalization/", name): value
            for name, value in keras_names(tensors).items()}


def _released_normalization(kernel, mean, variance, shape):
    """The stem kernel, once the file's Normalization layer is checked to hold the released files' values, the
    ones the recorded preprocessing reproduces: with another, keras_cnn's record would silently be wrong."""
    if not (np.allclose(mean.ravel(), IMAGENET_MEAN, atol=1e-6) and np.allclose(variance.ravel(), IMAGENET_STD,
                                                                                  atol=1e-6)):
        raise ValueError(
            f"this keras.applications EfficientNet file's Normalization layer holds mean {mean.ravel().tolist()} "
            f"and variance {variance.ravel().tolist()}; keras_cnn reproduces the released files' preprocessing "
            f"only (mean {list(IMAGENET_MEAN)}, 'variance' {list(IMAGENET_STD)} and the extra Rescaling(1 / "
            "sqrt(std)) of weights='imagenet': ImageNet's mean and std). Nothing was loaded.")
    return kernel


def _keras(keys):
    """keras.applications: ``stem_conv`` (checked with the file's Normalization, :func:`_released_normalization`),
    ``block<row><letter>_*``, ``top_conv``, ``predictions``."""
    names = {**layer_names(keys, ("stem_conv", "stem_bn"), ("top_conv", "top_bn"), _keras_block),
             "predictions": "predictions"}
    mapping = keras_rule(names.get)(keys)
    mapping["conv1/kernel"] = Source(("stem_conv/kernel", "normalization/mean", "normalization/variance"),
                                     _released_normalization)
    return mapping


for _name, (_spec, _) in COMPOUND_SCALING.items():
    _row6 = _spec.stages[5][-1] - 1  # the last block of row 6 (depth tells most variants apart by name)
    _slow = _name != _CI
    _crop, _resize, _interpolation = _TORCHVISION_EVAL[_name]
    register_upstream(Upstream(
        source="torchvision", name=_name, model=_name, mapping=_torchvision,
        signature=("features.0.0.weight", f"features.6.{_row6}.block.0.0.weight", "features.8.0.weight"),
        preprocessing=imagenet(_crop, _resize, interpolation=_interpolation),
        # B0-B4: torchvision's BatchNorm2d default, 1e-5; B5-B7: norm_layer with eps=1e-3, the ported weights'
        options=SYMMETRIC if _name in ("efficientnet_b5", "efficientnet_b6", "efficientnet_b7") else PYTORCH,
        head=("classifier.1.*",), reference=f"torchvision.models.{_name}", golden_input=_GOLDEN_INPUT, slow=_slow))

    _size = _spec.resolution
    _upstream = f"tf_{_name}"
    register_upstream(Upstream(
        source="timm", name=_upstream, model=_name, mapping=_timm,
        signature=("conv_stem.weight", f"blocks.5.{_row6}.conv_pwl.weight", "conv_head.weight"),
        preprocessing=imagenet(_size, math.floor(_size / _TIMM_CROP[_name]), interpolation="bicubic"),
        head=("classifier.*",), reference=f"timm:{_upstream}", slow=_slow,
        golden_input=_TIMM_B7_GOLDEN_INPUT if _name == "efficientnet_b7" else _GOLDEN_INPUT,
        note="; ".join(["timm's .ap_in1k (AdvProp) weights of the same model take inputs in [-1, 1] (mean = std = "
                        "0.5)"] + ([same_tensors(_name)] if _name in _TIMM_PYTORCH else []))))
    if _name in _TIMM_PYTORCH:
        _size, _crop, _normalisation = _TIMM_PYTORCH[_name]
        register_upstream(Upstream(
            source="timm", name=_name, model=_name, mapping=_timm, options=PYTORCH,
            signature=("conv_stem.weight", f"blocks.5.{_row6}.conv_pwl.weight", "conv_head.weight"),
            preprocessing=imagenet(_size, math.floor(_size / _crop), **_normalisation, interpolation="bicubic"),
            head=("classifier.*",), reference=f"timm:{_name}", golden_input=_GOLDEN_INPUT, slow=True,
            note=same_tensors(_name)))

    # keras.applications carries its preprocessing: Rescaling(1 / 255), Normalization with the released files'
    # mean (0.485, 0.456, 0.406) and "variance" (0.229, 0.224, 0.225) (the standard deviations, a known slip),
    # then, for weights="imagenet", Rescaling(1 / sqrt(std)): (x / 255 - mean) / std, ImageNet's record (the
    # mapping checks the file holds those values). TensorFlow's evaluation crops size / (size + 32), bicubic.
    register_upstream(Upstream(
        source="keras.applications", name=f"EfficientNetB{_name[-1]}", model=_name, mapping=_keras,
        signature=("stem_conv/kernel", f"block6{chr(ord('a') + _row6)}_project_conv/kernel", "top_conv/kernel"),
        renamed=_keras_renamed, preprocessing=imagenet(_size, _size + 32, interpolation="bicubic"),
        head=("predictions/*",), ignore=("normalization/count",), slow=_slow,
        note="files whose Normalization layer holds other values than the released ones are refused"))
