"""DenseNet: torchvision's and timm's ``densenet121``-``densenet201``, keras.applications' DenseNet121/169/201.

The three compute keras_cnn's DenseNet exactly (symmetric stem padding is already the family's form, see
:mod:`keras_cnn.models.densenet`); keras.applications normalises with epsilon 1.001e-5 (``bn_epsilon``). The
canonical names are those of the plain build, so a memory-efficient build (``memory_efficient=True``, its
``ConcatBNReLUConv`` layers) loads the same checkpoints.
"""

from keras_cnn.models.densenet import VARIANTS
from keras_cnn.weights._catalog import Upstream, imagenet, register_upstream
from keras_cnn.weights._mapping import keras_rule, substitute, torch_rule

# keras_cnn layer -> torchvision module (timm's DenseNet keeps torchvision's names): features.conv0/norm0 stem,
# features.denseblock<b>.denselayer<l>.norm1/conv1/norm2/conv2, features.transition<b>.norm/conv, norm5, classifier
_TORCH = substitute([
    (r"conv1", "features.conv0"),
    (r"conv1_bn", "features.norm0"),
    (r"block(\d+)_layer(\d+)_(bn|conv)([12])",
     lambda m: f"features.denseblock{m[1]}.denselayer{m[2]}.{'norm' if m[3] == 'bn' else 'conv'}{m[4]}"),
    (r"transition(\d+)_(bn|conv)", lambda m: f"features.transition{m[1]}.{'norm' if m[2] == 'bn' else 'conv'}"),
    (r"final_bn", "features.norm5"),
    (r"predictions", "classifier"),
])


def _keras_layer(match):
    """keras.applications names a dense layer ``conv<b+1>_block<l>_0_bn`` (BN1), ``_1_conv``, ``_1_bn``,
    ``_2_conv``: stage numbers start at 2 (conv1 is the stem)."""
    block, layer, kind, index = int(match[1]), match[2], match[3], int(match[4])
    part = {("bn", 1): "0_bn", ("conv", 1): "1_conv", ("bn", 2): "1_bn", ("conv", 2): "2_conv"}[kind, index]
    return f"conv{block + 1}_block{layer}_{part}"


_KERAS = substitute([
    (r"conv1", "conv1_conv"),
    (r"conv1_bn", "conv1_bn"),
    (r"block(\d+)_layer(\d+)_(bn|conv)([12])", _keras_layer),
    (r"transition(\d+)_(bn|conv)", lambda m: f"pool{int(m[1]) + 1}_{m[2]}"),  # pool2-pool4
    (r"final_bn", "bn"),
    (r"predictions", "predictions"),
])


def _depth_marks(name):
    """``(blocks, last, before)``: the number of dense blocks and the layers of the last two; the last layer of
    each names a tensor only a model this deep has (signatures tell the variants apart)."""
    blocks = VARIANTS[name].block_config
    return len(blocks), blocks[-1], blocks[-2]


def _torch_signature(name):
    blocks, last, before = _depth_marks(name)
    return ("features.conv0.weight", f"features.denseblock{blocks}.denselayer{last}.conv2.weight",
            f"features.denseblock{blocks - 1}.denselayer{before}.conv2.weight")


def _torch_upstream(source, name, **fields):
    reference = f"torchvision.models.{name}" if source == "torchvision" else f"timm:{name}"
    return Upstream(source=source, name=name, model=name, mapping=torch_rule(_TORCH),
                    signature=_torch_signature(name), head=("classifier.*",), reference=reference, **fields)


# golden inputs: 72 halves to 36, 18 (stem), 9, 4 (floor pooling of an odd map), 2 through the transitions
for _name in ("densenet121", "densenet161", "densenet169", "densenet201"):
    register_upstream(_torch_upstream("torchvision", _name, preprocessing=imagenet(224, 256), golden_input=72,
                                      slow=_name != "densenet121"))
# timm's default densenet121 (the RandAugment-trained ``ra_in1k``, bicubic); its ``tv_in1k`` tags are
# torchvision's files
register_upstream(_torch_upstream(
    "timm", "densenet121", preprocessing=imagenet(224, 256, interpolation="bicubic"), golden_input=72,
    slow=True,  # torchvision's rules on torchvision's names: its CI row already runs them
    note="timm's file has torchvision's tensor names: weights_source='timm' records timm's bicubic preprocessing "
         "(the function is the same either way)"))

for _name, _upstream in (("densenet121", "DenseNet121"), ("densenet169", "DenseNet169"),
                         ("densenet201", "DenseNet201")):
    _blocks, _last, _before = _depth_marks(_name)
    register_upstream(Upstream(
        source="keras.applications", name=_upstream, model=_name, mapping=keras_rule(_KERAS),
        signature=("conv1_conv/kernel", f"conv{_blocks + 1}_block{_last}_2_conv/kernel",
                   f"conv{_blocks}_block{_before}_2_conv/kernel"),
        # keras.applications.densenet.preprocess_input is "torch" mode: [0, 1] then ImageNet mean/std
        preprocessing=imagenet(224, 256), options={"bn_epsilon": 1.001e-5}, head=("predictions/*",)))
