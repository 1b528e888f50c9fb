"""Inception family: torchvision's ``googlenet`` and ``inception_v3``; timm's ``inception_v3`` (four pretrained
tags), ``inception_v4`` and ``inception_resnet_v2``; keras.applications' ``InceptionV3`` and
``InceptionResNetV2``.

torchvision's pretrained GoogLeNet and Inception-v3 are built with ``transform_input=True``: they take ImageNet
mean/std-normalised images and turn them back into ``(pixel - 0.5) / 0.5`` before the first convolution, the
[-1, 1] input the ported TF-slim weights were trained on. keras_cnn has no such input transform, so the record of
these checkpoints asks for that [-1, 1] input directly (mean 0.5, std 0.5): the same numbers reach the first
convolution. (The goldens build the reference with ``transform_input=False`` for that reason.)

keras.applications leaves most of its Inception convolutions unnamed; the reader renumbers such layers by creation
(``conv2d_1``, ``batch_normalization_1``, ... as in the released files), and keras.applications creates them in
the order of the module tables, which :func:`keras_cnn.layers.inception_blocks.conv_names` lists.
SE-Inception-v3 has no released checkpoint (Hu et al. released SE-ResNet/ResNeXt/BN-Inception, no SE-Inception-v3;
neither torchvision nor timm has one).
"""

import re

from keras_cnn.layers.inception_blocks import Conv, Split, conv_names
from keras_cnn.models.inception import GOOGLENET, INCEPTION_V3, googlenet_module
from keras_cnn.models.inception_resnet import IR_V2, INCEPTION_V4, residual_units, v4_modules
from keras_cnn.weights._catalog import INCEPTION, Upstream, imagenet, register_upstream
from keras_cnn.weights._mapping import Source, flattened_dense, keras_rule, torch_rule

_CONV = re.compile(r"(?P<module>.+)_b(?P<branch>\d+)_(?P<op>\d+)(?P<member>[ab]?)_\d+x\d+")
_STEM = ("conv2d_1a_3x3", "conv2d_2a_3x3", "conv2d_2b_3x3", "conv2d_3b_1x1", "conv2d_4a_3x3")  # v3, IR-v2


def _position(layer):
    """``(branch, op, member)`` of an Inception module convolution named ``<module>_b<b>_<op>[a|b]_<kernel>``
    (1-based branch and op, fork member '' / 'a' / 'b')."""
    match = _CONV.fullmatch(layer)
    return int(match["branch"]), int(match["op"]), match["member"]


def _conv_bn(blocks, plain=None):
    """``rename`` for :func:`torch_rule` from ``blocks`` ``{keras conv: torch module of conv + BN}`` (torchvision's
    BasicConv2d and timm's ConvNormAct, with ``.conv`` and ``.bn``; the BN layer is ``<conv>_bn``) and ``plain``
    ``{keras layer: torch module or {variable: Source}}`` (classifiers, biased convolutions)."""
    plain = plain or {}

    def rename(layer):
        if layer in plain:
            return plain[layer]
        if layer in blocks:
            return f"{blocks[layer]}.conv"
        if layer.endswith("_bn") and layer[:-3] in blocks:
            return f"{blocks[layer[:-3]]}.bn"
        return None
    return rename


# --- torchvision GoogLeNet: conv1-conv3, inception3a.branch1..4 (Sequential but branch1), aux1/aux2, fc --------

def _googlenet_blocks():
    blocks = {"conv1_7x7_s2": "conv1", "conv2_3x3_reduce": "conv2", "conv2_3x3": "conv3",
              "aux1_conv": "aux1.conv", "aux2_conv": "aux2.conv"}
    for module, row in GOOGLENET.modules:
        branches = googlenet_module(row, kernel_5x5=3)
        for layer in conv_names(branches, name=f"inception_{module}"):
            branch, op, _ = _position(layer)
            single = len(branches[branch - 1]) == 1
            blocks[layer] = f"inception{module}.branch{branch}" + ("" if single else f".{op - 1}")
    return blocks


def _googlenet_aux_fc(aux):
    # torchvision flattens the (128, 4, 4) map channel-first into fc1; Keras flattens (4, 4, 128)
    return {"kernel": flattened_dense(f"{aux}.fc1.weight", 128, 4, 4), "bias": Source((f"{aux}.fc1.bias",))}


_GOOGLENET_PLAIN = {"predictions": "fc", "aux1_fc": _googlenet_aux_fc("aux1"), "aux2_fc": _googlenet_aux_fc("aux2"),
                    "aux1_predictions": "aux1.fc2", "aux2_predictions": "aux2.fc2"}
GOOGLENET_TORCHVISION = dict(batch_norm=True, kernel_5x5=3, pool4_size=2, padding="symmetric", aux_pooling="adaptive")

register_upstream(Upstream(
    source="torchvision", name="googlenet", model="googlenet",
    mapping=torch_rule(_conv_bn(_googlenet_blocks(), _GOOGLENET_PLAIN)),
    signature=("conv1.conv.weight", "inception3a.branch3.1.conv.weight", "inception5b.branch4.1.bn.weight"),
    preprocessing=imagenet(224, 256, **INCEPTION), options=GOOGLENET_TORCHVISION,
    head=("fc.*", "aux1.fc2.*", "aux2.fc2.*"), aux=("aux1.*", "aux2.*"),
    reference="torchvision.models.googlenet", reference_kwargs={"transform_input": False, "init_weights": False},
    # 72 leaves odd maps (9 before pool3), where ceil-mode pooling and "same" differ
    golden_input=72,
    note="torchvision's pretrained model normalises with ImageNet mean/std and maps back to [-1, 1] inside "
         "(transform_input=True); the record asks for [-1, 1] input. Its auxiliary heads are not trained."))


# --- Inception-v3, torchvision and timm (one naming): Conv2d_1a_3x3, Mixed_5b.branch1x1, ..., AuxLogits, fc -----

# torch branch names of each module, per keras_cnn branch (torchvision's InceptionA-E); pool branches: branch_pool
_V3_BRANCHES = {"A": ("branch1x1", "branch5x5", "branch3x3dbl", "branch_pool"),
                "B": ("branch3x3", "branch3x3dbl"),
                "C": ("branch1x1", "branch7x7", "branch7x7dbl", "branch_pool"),
                "D": ("branch3x3", "branch7x7x3"),
                "E": ("branch1x1", "branch3x3", "branch3x3dbl", "branch_pool")}
_V3_KINDS = {"mixed_5b": "A", "mixed_5c": "A", "mixed_5d": "A", "mixed_6a": "B", "mixed_6b": "C", "mixed_6c": "C",
             "mixed_6d": "C", "mixed_6e": "C", "mixed_7a": "D", "mixed_7b": "E", "mixed_7c": "E"}


def _v3_torch_blocks():
    """torchvision names a branch's convolutions ``<branch>_<op>`` (``branch7x7dbl_3``, fork members
    ``branch3x3_2a``/``_2b``) and a one-convolution branch ``<branch>`` alone (``branch1x1``, ``branch_pool``)."""
    blocks = {name: name.capitalize() for name in _STEM}
    blocks.update({"aux_conv1": "AuxLogits.conv0", "aux_conv2": "AuxLogits.conv1"})
    for module, branches in INCEPTION_V3.modules:
        labels = _V3_BRANCHES[_V3_KINDS[module]]
        for layer in conv_names(branches, name=module):
            branch, op, member = _position(layer)
            convs = sum(len(o.convs) if isinstance(o, Split) else isinstance(o, Conv) for o in branches[branch - 1])
            label = labels[branch - 1]
            blocks[layer] = f"{module.capitalize()}.{label}" + ("" if convs == 1 else f"_{op}{member}")
    return blocks


_V3_TORCH = torch_rule(_conv_bn(_v3_torch_blocks(), {"predictions": "fc", "aux_predictions": "AuxLogits.fc"}))
V3_TORCH_OPTIONS = dict(batch_norm_scale=True, count_include_pad=True)
_V3_SIGNATURE = ("Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch3x3dbl_3b.conv.weight", "Mixed_5b.branch_pool.bn.weight")
_V3_AUX = dict(head=("fc.*", "AuxLogits.fc.*"), aux=("AuxLogits.*",))
_TV_NOTE = ("torchvision's pretrained model normalises with ImageNet mean/std and maps back to [-1, 1] inside "
            "(transform_input=True); the record asks for [-1, 1] input. The auxiliary head matches at 299.")

register_upstream(Upstream(
    source="torchvision", name="inception_v3", model="inception_v3", mapping=_V3_TORCH,
    signature=_V3_SIGNATURE + ("AuxLogits.fc.weight",), preprocessing=imagenet(299, 342, **INCEPTION),
    options=V3_TORCH_OPTIONS, **_V3_AUX, reference="torchvision.models.inception_v3",
    # its AuxLogits run in the calibration (train mode) and need the 17x17 grid of a 299 input; the same rules
    # run at 75 in CI as timm's tf_in1k
    reference_kwargs={"transform_input": False, "init_weights": False}, golden_input=299, slow=True, note=_TV_NOTE))

# timm's tags: tv_in1k is torchvision's file (with AuxLogits; its aux head runs in timm's forward only at ~299,
# hence that golden's size), tf_in1k / tf_adv_in1k ports of TF-slim's, gluon_in1k GluonCV's (ImageNet mean/std).
# The files without AuxLogits are alike: a file is taken as tf_in1k unless weights_source names the tag.
_TIMM_V3 = (("tv_in1k", ("AuxLogits.fc.weight",), INCEPTION, {"aux_logits": True}, 299, True),
            ("tf_in1k", (), INCEPTION, {}, 75, False),
            ("tf_adv_in1k", (), INCEPTION, {}, 75, True),
            ("gluon_in1k", (), {}, {}, 75, True))  # imagenet()'s default mean/std
for _tag, _signature, _norm, _kwargs, _size, _slow in _TIMM_V3:
    register_upstream(Upstream(
        source="timm", name=f"inception_v3.{_tag}", model="inception_v3", mapping=_V3_TORCH,
        signature=_V3_SIGNATURE + _signature, preprocessing=imagenet(299, 342, **_norm, interpolation="bicubic"),
        options=V3_TORCH_OPTIONS, **_V3_AUX, reference="timm:inception_v3", reference_kwargs=_kwargs,
        golden_input=_size, slow=_slow,
        note="" if _signature else "indistinguishable from the other timm inception_v3 tags without AuxLogits: "
                                   "name the tag in weights_source for its preprocessing record"))


# --- timm (Cadene) Inception-v4 and Inception-ResNet-v2: <module>.branch<k>[.<op>] -------------------------------

def _cadene_branches(module, branches, path):
    """timm's names of a module's convolutions: ``branch<k>`` for a one-op branch, ``branch<k>.<op>`` in a
    Sequential (a pooling op counts), ``branch<k>_<op>[a|b]`` in a branch with a fork (Inception-v4's C blocks)."""
    blocks = {}
    for layer in conv_names(branches, name=module):
        branch, op, member = _position(layer)
        ops = branches[branch - 1]
        if len(ops) == 1:
            blocks[layer] = f"{path}.branch{branch - 1}"
        elif any(isinstance(o, Split) for o in ops):
            blocks[layer] = f"{path}.branch{branch - 1}_{op - 1}{member}"
        else:
            blocks[layer] = f"{path}.branch{branch - 1}.{op - 1}"
    return blocks


def _v4_timm_blocks():
    """timm's ``features`` Sequential: the three stem convolutions, then one index per module; ``Mixed3a`` and
    ``Mixed5a`` call their convolution ``conv``."""
    blocks = {name: f"features.{i}" for i, name in enumerate(("conv2d_1a_3x3", "conv2d_2a_3x3", "conv2d_2b_3x3"))}
    for index, (module, branches) in enumerate(v4_modules(INCEPTION_V4), start=3):
        if module in ("mixed_3a", "mixed_5a"):
            blocks.update({layer: f"features.{index}.conv" for layer in conv_names(branches, name=module)})
        else:
            blocks.update(_cadene_branches(module, branches, f"features.{index}"))
    return blocks


register_upstream(Upstream(
    source="timm", name="inception_v4.tf_in1k", model="inception_v4",
    mapping=torch_rule(_conv_bn(_v4_timm_blocks(), {"predictions": "last_linear"})),
    signature=("features.0.conv.weight", "features.21.branch2_3b.conv.weight", "last_linear.weight"),
    preprocessing=imagenet(299, 342, **INCEPTION, interpolation="bicubic"), options={"batch_norm_scale": True},
    head=("last_linear.*",), reference="timm:inception_v4", golden_input=75,
    # The seeded 75-input network amplifies float32 rounding ~1.3x per layer (no residuals): torch float32 alone is
    # 5e-4 from torch float64. The golden is computed in float64 on both sides, where the conversion is exact.
    golden_dtype="float64"))


def _ir_v2_timm():
    """timm's ``repeat``/``repeat_1``/``repeat_2`` Sequentials of A/B/C blocks (the last C block apart, as
    ``block8``), each with its projection ``conv2d`` (biased, no BN)."""
    blocks = {name: name.rsplit("_", 1)[0] for name in _STEM}
    blocks["conv2d_7b_1x1"] = "conv2d_7b"
    blocks.update(_cadene_branches("mixed_5b", IR_V2.mixed_5b, "mixed_5b"))
    plain, counts = {"predictions": "classif"}, {0: 0, 1: 0, 2: 0}
    units = residual_units(IR_V2)
    for index, (name, branches, stage) in enumerate(units):
        if stage is None:
            path = name
        elif index == len(units) - 1:
            path = "block8"
        else:
            path = f"{('repeat', 'repeat_1', 'repeat_2')[stage]}.{counts[stage]}"
            counts[stage] += 1
        blocks.update(_cadene_branches(name, branches, path))
        if stage is not None:
            plain[f"{name}_up"] = f"{path}.conv2d"
    return blocks, plain


for _tag in ("tf_in1k", "tf_ens_adv_in1k"):
    register_upstream(Upstream(
        source="timm", name=f"inception_resnet_v2.{_tag}", model="inception_resnet_v2",
        mapping=torch_rule(_conv_bn(*_ir_v2_timm())),
        signature=("conv2d_1a.conv.weight", "repeat_2.8.conv2d.weight", "block8.conv2d.weight"),
        # timm's crop_pct 0.8975: 299 / 0.8975 = 333
        preprocessing=imagenet(299, 333, **INCEPTION, interpolation="bicubic"), options={"batch_norm_scale": True},
        head=("classif.*",), reference="timm:inception_resnet_v2", golden_input=75, slow=_tag != "tf_in1k",
        note="" if _tag == "tf_in1k" else "the same tensors as inception_resnet_v2.tf_in1k: name the tag in "
                                          "weights_source for its record"))


# --- keras.applications InceptionV3 / InceptionResNetV2: unnamed conv2d_<n> + batch_normalization_<n> --------

def _keras_unnamed(order, named=None):
    """``rename`` for :func:`keras_rule`: the ``n``-th keras_cnn convolution of ``order`` is ``conv2d_<n>`` with
    ``batch_normalization_<n>`` (keras.applications' ``conv2d_bn`` creates one of each, unnamed, as renumbered
    by the reader); ``named`` maps the layers keras.applications names."""
    names = dict(named or {})
    for rank, layer in enumerate(order, start=1):
        names[layer] = f"conv2d_{rank}"
        names[f"{layer}_bn"] = f"batch_normalization_{rank}"
    return names.get


def _v3_keras_order():
    return list(_STEM) + [layer for module, branches in INCEPTION_V3.modules
                          for layer in conv_names(branches, name=module)]


def _ir_v2_keras():
    order = list(_STEM) + conv_names(IR_V2.mixed_5b, name="mixed_5b")
    named = {"conv2d_7b_1x1": "conv_7b", "conv2d_7b_1x1_bn": "conv_7b_bn", "predictions": "predictions"}
    for name, branches, stage in residual_units(IR_V2):
        order += conv_names(branches, name=name)
        if stage is not None:
            named[f"{name}_up"] = f"{name}_conv"
    return _keras_unnamed(order, named)


register_upstream(Upstream(
    source="keras.applications", name="InceptionV3", model="inception_v3",
    mapping=keras_rule(_keras_unnamed(_v3_keras_order(), {"predictions": "predictions"})),
    signature=("conv2d_94/kernel", "batch_normalization_94/moving_variance"),
    preprocessing=imagenet(299, **INCEPTION), head=("predictions/*",)))

register_upstream(Upstream(
    source="keras.applications", name="InceptionResNetV2", model="inception_resnet_v2",
    mapping=keras_rule(_ir_v2_keras()),
    signature=("conv2d_203/kernel", "block8_10_conv/kernel", "conv_7b_bn/moving_variance"),
    preprocessing=imagenet(299, **INCEPTION), head=("predictions/*",)))
