"""MobileNet v1, v2, v3: torchvision's ``mobilenet_v2`` and ``mobilenet_v3_large``/``_small``, timm's
``mobilenetv1_100``, ``tf_mobilenetv3_large_100``/``_small_100`` and ``mobilenetv3_large_100``/``_small_100``,
keras.applications' ``MobileNet``, ``MobileNetV2``, ``MobileNetV3Large`` and ``MobileNetV3Small``.

Every upstream names a block's layers by its position and by which parts it has (expansion, squeeze-and-excitation),
so the rules read the parts off keras_cnn's own names (``block<i>_expand``, ``stage<r>_block<b>_dwconv``, ...):
:func:`block_parts`. The PyTorch-trained checkpoints (torchvision, timm's own) need PyTorch's
symmetric padding of the strided convolutions; torchvision's v2 and timm's also BatchNorm epsilon 1e-5 (torchvision's
v3 uses the TensorFlow 1e-3). timm's ``tf_*`` ports and keras.applications are the TensorFlow form, the defaults.
"""

import re

from keras_cnn.models.mobilenet import MOBILENET_V1, MOBILENET_V3_LARGE, MOBILENET_V3_SMALL
from keras_cnn.weights._catalog import INCEPTION, Upstream, imagenet, register_upstream
from keras_cnn.weights._mapping import Source, keras_rule, torch_rule

PYTORCH = {"padding": "symmetric", "bn_epsilon": 1e-5}  # torchvision's default BatchNorm2d, timm's PyTorch models
SYMMETRIC = {"padding": "symmetric"}  # torchvision's MobileNetV3 and EfficientNet-B5-B7 keep epsilon 1e-3
PARTS = ("expand", "dwconv", "se", "project")  # the order of a block's layers in every upstream

_LAYER = re.compile(r"(?P<block>(?:stage\d+_)?block\d+)_(?P<part>expand|dwconv|se_reduce|se_expand|project|pwconv)"
                    r"(?:_bn)?")


def block_parts(keys):
    """``{block: set of parts}`` of keras_cnn's blocks (``block3``, ``stage2_block1``) in build order, from the
    canonical keys: a block has an ``"expand"`` part unless its expansion is 1, ``"se"`` if it has
    squeeze-and-excitation."""
    found = {}
    for key in keys:
        match = _LAYER.fullmatch(key.split("/")[0])
        if match:
            part = "se" if match["part"].startswith("se_") else match["part"]
            found.setdefault(match["block"], set()).add(part)
    order = sorted(found, key=lambda block: tuple(int(n) for n in re.findall(r"\d+", block)))
    return {block: found[block] for block in order}


def conv_as_dense_torch(name):
    """A PyTorch 1x1 convolution ``(O, I, 1, 1)`` on the pooled vector as keras_cnn's ``Dense`` kernel
    ``(I, O)`` (timm's MobileNetV3 ``conv_head``)."""
    return Source((name,), lambda array, shape: array.reshape(array.shape[0], -1).T)


def conv_as_dense_keras(name):
    """A Keras 1x1 convolution ``(1, 1, I, O)`` on the pooled map as a ``Dense`` kernel ``(I, O)``
    (keras.applications' MobileNet ``conv_preds``, MobileNetV3 ``conv_2``/``logits``)."""
    return Source((name,), lambda array, shape: array.reshape(shape))


def layer_names(keys, stem, last, block_names):
    """``{keras_cnn layer: upstream layer}`` for the stem (``conv1``), the last 1x1 convolution (``conv_last``,
    if any) and every block: ``stem`` and ``last`` are ``(conv, bn)`` names; ``block_names(position, block,
    parts)`` gives ``{keras_cnn suffix: upstream name}`` for the block at ``position`` (0-based)."""
    names = {"conv1": stem[0], "conv1_bn": stem[1]}
    if last:
        names.update({"conv_last": last[0], "conv_last_bn": last[1]})
    for position, (block, parts) in enumerate(block_parts(keys).items()):
        names.update({f"{block}_{suffix}": name for suffix, name in block_names(position, block, parts).items()})
    return names


def torchvision_block(prefix, parts):
    """torchvision's MobileNetV3 / EfficientNet block ``<prefix>.block``: one Sequential entry per part, in
    :data:`PARTS` order; convolution + BN as ``.0``/``.1``, squeeze-and-excitation as ``fc1``/``fc2``."""
    names, index = {}, 0
    for part in (p for p in PARTS if p in parts):
        path = f"{prefix}.block.{index}"
        if part == "se":
            names.update({"se_reduce": f"{path}.fc1", "se_expand": f"{path}.fc2"})
        else:
            names.update({part: f"{path}.0", f"{part}_bn": f"{path}.1"})
        index += 1
    return names


def timm_block(prefix, parts):
    """timm's efficientnet-builder block ``prefix``: an ``InvertedResidual`` (``conv_pw``/``bn1`` expansion,
    ``conv_dw``/``bn2``, ``se``, ``conv_pwl``/``bn3``) when the block expands, else a ``DepthwiseSeparableConv``
    (``conv_dw``/``bn1``, ``se``, ``conv_pw``/``bn2``; MobileNet v1's ``pwconv`` is its ``conv_pw``)."""
    se = {"se_reduce": f"{prefix}.se.conv_reduce", "se_expand": f"{prefix}.se.conv_expand"} if "se" in parts else {}
    if "expand" in parts:
        return {"expand": f"{prefix}.conv_pw", "expand_bn": f"{prefix}.bn1", "dwconv": f"{prefix}.conv_dw",
                "dwconv_bn": f"{prefix}.bn2", **se, "project": f"{prefix}.conv_pwl", "project_bn": f"{prefix}.bn3"}
    pointwise = "pwconv" if "pwconv" in parts else "project"
    return {"dwconv": f"{prefix}.conv_dw", "dwconv_bn": f"{prefix}.bn1", **se, pointwise: f"{prefix}.conv_pw",
            f"{pointwise}_bn": f"{prefix}.bn2"}


def timm_stages(widths):
    """``[(stage, index)]`` of flat blocks in timm's nested ``blocks.<stage>.<index>``: timm starts a stage
    where the output width changes (its architecture strings have one entry per width)."""
    positions, stage, index = [], -1, 0
    for i, width in enumerate(widths):
        if i == 0 or width != widths[i - 1]:
            stage, index = stage + 1, 0
        positions.append((stage, index))
        index += 1
    return positions


def keras_names(tensors):
    """One name for a depthwise kernel: keras.applications' released files were written by Keras 2, whose
    ``DepthwiseConv2D`` calls it ``<layer>/depthwise_kernel``; Keras 3 calls it ``<layer>/kernel``, as the rules
    do."""
    return {re.sub(r"/depthwise_kernel$", "/kernel", name): value for name, value in tensors.items()}


# --- torchvision ----------------------------------------------------------------------------------------------

def _torchvision_v2_block(position, block, parts):
    """torchvision's MobileNetV2 ``features.<1 + position>.conv``: [ConvBNReLU expansion], ConvBNReLU depthwise,
    the projection's Conv2d and BatchNorm2d as separate entries."""
    prefix, index, names = f"features.{position + 1}.conv", 0, {}
    if "expand" in parts:
        names.update({"expand": f"{prefix}.0.0", "expand_bn": f"{prefix}.0.1"})
        index = 1
    names.update({"dwconv": f"{prefix}.{index}.0", "dwconv_bn": f"{prefix}.{index}.1",
                  "project": f"{prefix}.{index + 1}", "project_bn": f"{prefix}.{index + 2}"})
    return names


def _torchvision_v2(keys):
    names = layer_names(keys, ("features.0.0", "features.0.1"), ("features.18.0", "features.18.1"),
                        _torchvision_v2_block)
    return torch_rule({**names, "predictions": "classifier.1"}.get)(keys)


def _torchvision_v3(blocks):
    last = f"features.{blocks + 1}"

    def mapping(keys):
        names = layer_names(keys, ("features.0.0", "features.0.1"), (f"{last}.0", f"{last}.1"),
                            lambda position, block, parts: torchvision_block(f"features.{position + 1}", parts))
        # the classifier is Linear(960/576 -> 1280/1024), Hardswish, Dropout, Linear: keras_cnn's head_fc, predictions
        return torch_rule({**names, "head_fc": "classifier.0", "predictions": "classifier.3"}.get)(keys)
    return mapping


register_upstream(Upstream(
    source="torchvision", name="mobilenet_v2", model="mobilenet_v2", mapping=_torchvision_v2,
    signature=("features.0.0.weight", "features.17.conv.2.weight", "features.18.0.weight"),
    preprocessing=imagenet(224, 232), options=PYTORCH, head=("classifier.1.*",),
    reference="torchvision.models.mobilenet_v2", golden_input=64))

for _name, _spec in (("mobilenet_v3_large", MOBILENET_V3_LARGE), ("mobilenet_v3_small", MOBILENET_V3_SMALL)):
    _blocks = len(_spec.blocks)
    register_upstream(Upstream(
        source="torchvision", name=_name, model=_name, mapping=_torchvision_v3(_blocks),
        # the last convolution's index (after 15 or 11 blocks) tells large and small apart
        signature=("features.0.0.weight", f"features.{_blocks + 1}.0.weight", "classifier.3.weight"),
        # torchvision's MobileNetV3 keeps TensorFlow's epsilon 1e-3 (its norm_layer), only the padding differs
        preprocessing=imagenet(224, 232 if _name == "mobilenet_v3_large" else 256), options=SYMMETRIC,
        head=("classifier.3.*",), top=("classifier.*",), reference=f"torchvision.models.{_name}", golden_input=64,
        slow=_name == "mobilenet_v3_large"))

# --- timm ---------------------------------------------------------------------------------------------------------


def _timm_mapping(widths, last, head):
    """timm's efficientnet-builder names: ``conv_stem``/``bn1``, ``blocks.<stage>.<index>`` (:func:`timm_stages`
    of the blocks' output ``widths``), ``last`` (the final 1x1 convolution's ``(conv, bn)`` or None) and the
    ``head`` layers."""
    positions = timm_stages(widths)

    def block(position, name, parts):
        return timm_block("blocks.{}.{}".format(*positions[position]), parts)

    def mapping(keys):
        return torch_rule({**layer_names(keys, ("conv_stem", "bn1"), last, block), **head}.get)(keys)
    return mapping


# timm's MobileNetV3 pools, then conv_head: a 1x1 convolution with bias (keras_cnn's head_fc), h-swish, classifier
_TIMM_V3_HEAD = {"head_fc": {"kernel": conv_as_dense_torch("conv_head.weight"), "bias": Source(("conv_head.bias",))},
                 "predictions": "classifier"}

register_upstream(Upstream(
    source="timm", name="mobilenetv1_100", model="mobilenet_v1",
    mapping=_timm_mapping([filters for filters, _ in MOBILENET_V1.layers], None, {"predictions": "classifier"}),
    # timm 1.0's MobileNet v1 is an efficientnet-builder model: 13 "dsa" blocks (pointwise activation, no
    # shortcut) in 5 stages, no head convolution; mobilenetv1_100h (with one) has conv_head and does not match
    signature=("conv_stem.weight", "blocks.4.1.conv_pw.weight", "classifier.weight"),
    preprocessing=imagenet(224, 256, **INCEPTION, interpolation="bicubic"), options=PYTORCH,
    head=("classifier.*",), reference="timm:mobilenetv1_100", golden_input=64))


def same_tensors(trained):
    """The note of timm's ``tf_<trained>`` port and its own PyTorch training ``trained``: the same tensor names and
    shapes, so a file cannot tell them apart; the ``tf_*`` row, registered first, is the one detected."""
    return (f"timm's tf_{trained} (TensorFlow port) and {trained} (PyTorch-trained: symmetric padding, epsilon "
            f"1e-5) have the same tensors; a file is taken as tf_{trained} unless "
            f"weights_source='timm:{trained}'")


for _name, _spec, _upstream in (("mobilenet_v3_large", MOBILENET_V3_LARGE, "mobilenetv3_large_100"),
                                ("mobilenet_v3_small", MOBILENET_V3_SMALL, "mobilenetv3_small_100")):
    _widths = [row[2] for row in _spec.blocks]
    _last = timm_stages(_widths)[-1][0] + 1  # the stage of the ConvBnAct after the blocks
    # timm's port of the TensorFlow checkpoint ("same" padding by Conv2dSame, epsilon 1e-3: the defaults), then
    # timm's own PyTorch training of the same model (its ra_in1k and lamb_in1k weights)
    _rows = {f"tf_{_upstream}": ({}, imagenet(224, 256, **INCEPTION), _name == "mobilenet_v3_large"),
             _upstream: (PYTORCH, imagenet(224, 256, interpolation="bicubic"), True)}
    for _row, (_options, _preprocessing, _slow) in _rows.items():
        register_upstream(Upstream(
            source="timm", name=_row, model=_name,
            mapping=_timm_mapping(_widths, (f"blocks.{_last}.0.conv", f"blocks.{_last}.0.bn1"), _TIMM_V3_HEAD),
            signature=("conv_stem.weight", f"blocks.{_last}.0.conv.weight", "conv_head.weight"),
            preprocessing=_preprocessing, options=_options, head=("classifier.*",),
            top=("conv_head.*", "classifier.*"), reference=f"timm:{_row}", golden_input=64, slow=_slow,
            note=same_tensors(_upstream)))

# --- keras.applications -----------------------------------------------------------------------------------------
# "tf" preprocessing: inputs in [-1, 1] (MobileNet, MobileNetV2 through preprocess_input; MobileNetV3 through its
# own Rescaling(1 / 127.5, offset=-1) layer on 0-255 pixels): INCEPTION's mean and std 0.5 give the same values.


def _keras_v1(keys):
    def rename(layer):
        match = re.fullmatch(r"block(\d+)_(dw|pw)conv(_bn)?", layer)
        if match:
            return f"conv_{match[2]}_{match[1]}{match[3] or ''}"
        if layer == "predictions":  # GlobalAveragePooling2D(keepdims) + 1x1 convolution + Reshape
            return {"kernel": conv_as_dense_keras("conv_preds/kernel"), "bias": Source(("conv_preds/bias",))}
        return {"conv1": "conv1", "conv1_bn": "conv1_bn"}.get(layer)
    return keras_rule(rename)(keys)


def _keras_v2_block(position, block, parts):
    prefix = "expanded_conv_" if position == 0 else f"block_{position}_"
    return {"expand": f"{prefix}expand", "expand_bn": f"{prefix}expand_BN", "dwconv": f"{prefix}depthwise",
            "dwconv_bn": f"{prefix}depthwise_BN", "project": f"{prefix}project", "project_bn": f"{prefix}project_BN"}


def _keras_v2(keys):
    names = {**layer_names(keys, ("Conv1", "bn_Conv1"), ("Conv_1", "Conv_1_bn"), _keras_v2_block),
             "predictions": "predictions"}
    return keras_rule(names.get)(keys)


def _keras_v3_block(position, block, parts):
    prefix = "expanded_conv_" if position == 0 else f"expanded_conv_{position}_"
    return {"expand": f"{prefix}expand", "expand_bn": f"{prefix}expand_bn", "dwconv": f"{prefix}depthwise",
            "dwconv_bn": f"{prefix}depthwise_bn", "se_reduce": f"{prefix}squeeze_excite_conv",
            "se_expand": f"{prefix}squeeze_excite_conv_1", "project": f"{prefix}project",
            "project_bn": f"{prefix}project_bn"}


def _keras_v3(keys):
    names = layer_names(keys, ("conv", "conv_bn"), ("conv_1", "conv_1_bn"), _keras_v3_block)
    # the head is pooling (keepdims), 1x1 convolutions conv_2 (+ h-swish, dropout) and logits, Flatten
    dense = {layer: {"kernel": conv_as_dense_keras(f"{conv}/kernel"), "bias": Source((f"{conv}/bias",))}
             for layer, conv in (("head_fc", "conv_2"), ("predictions", "logits"))}
    return keras_rule({**names, **dense}.get)(keys)


register_upstream(Upstream(
    source="keras.applications", name="MobileNet", model="mobilenet_v1", mapping=_keras_v1,
    signature=("conv1/kernel", "conv_dw_13_bn/gamma", "conv_pw_13/kernel"), renamed=keras_names,
    preprocessing=imagenet(224, **INCEPTION), head=("conv_preds/*",), slow=True,  # its keras test is slow
    # its strided depthwise layers pad ((0, 1), (0, 1)): TensorFlow's "same" on the even maps of any input that
    # is a multiple of 32, as the released 128-224 ones are
    note="equal to TensorFlow's 'same' padding for inputs that are multiples of 32"))
register_upstream(Upstream(
    source="keras.applications", name="MobileNetV2", model="mobilenet_v2", mapping=_keras_v2,
    signature=("Conv1/kernel", "block_16_project/kernel", "Conv_1/kernel"), renamed=keras_names,
    preprocessing=imagenet(224, **INCEPTION), head=("predictions/*",)))
for _name, _upstream, _spec in (("mobilenet_v3_large", "MobileNetV3Large", MOBILENET_V3_LARGE),
                                ("mobilenet_v3_small", "MobileNetV3Small", MOBILENET_V3_SMALL)):
    _last_block = f"expanded_conv_{len(_spec.blocks) - 1}"
    register_upstream(Upstream(
        source="keras.applications", name=_upstream, model=_name, mapping=_keras_v3,
        signature=("conv/kernel", f"{_last_block}_project/kernel", "conv_1/kernel"), renamed=keras_names,
        preprocessing=imagenet(224, **INCEPTION), head=("logits/*",), top=("conv_2/*", "logits/*"), slow=True))
