"""ShuffleNet v2: torchvision's ``shufflenet_v2_x0_5``-``x2_0``.

keras_cnn's ShuffleNet v2 is torchvision's function: PyTorch's one-pixel padding of the strided convolutions and
poolings, BN epsilon 1e-5, ``x.chunk(2)`` with the second half through branch 2 (:class:`ChannelSplit`),
``cat(branch1, branch2)`` and a 2-group shuffle at the end of every unit. ShuffleNet v1 has no checkpoint in
torchvision, timm or keras.applications (the authors' release is its own PyTorch code), so none is registered.
"""

from keras_cnn.weights._catalog import Upstream, imagenet, register_upstream
from keras_cnn.weights._mapping import substitute, torch_rule

# torchvision's branches are nn.Sequential: branch1 = dw 3x3/2, BN, 1x1, BN, ReLU; branch2 = 1x1, BN, ReLU,
# dw 3x3, BN, 1x1, BN, ReLU; the index of each module in its Sequential names its tensors
_BRANCH = {"branch1_dwconv": "branch1.0", "branch1_dwconv_bn": "branch1.1", "branch1_conv": "branch1.2",
           "branch1_conv_bn": "branch1.3", "branch2_conv1": "branch2.0", "branch2_conv1_bn": "branch2.1",
           "branch2_dwconv": "branch2.3", "branch2_dwconv_bn": "branch2.4", "branch2_conv2": "branch2.5",
           "branch2_conv2_bn": "branch2.6"}

_TORCH = substitute([
    (r"conv1", "conv1.0"),
    (r"conv1_bn", "conv1.1"),
    (r"stage(\d)_block(\d+)_(branch[12]_\w+)", lambda m: f"stage{m[1]}.{int(m[2]) - 1}.{_BRANCH[m[3]]}"),
    (r"conv5", "conv5.0"),
    (r"conv5_bn", "conv5.1"),
    (r"predictions", "fc"),
])

# name: resize of torchvision's weights (the x1.5 and x2.0 files came later, with the 232 recipe)
_RESIZE = {"shufflenet_v2_x0_5": 256, "shufflenet_v2_x1_0": 256, "shufflenet_v2_x1_5": 232,
           "shufflenet_v2_x2_0": 232}

# golden input 64: conv1 32, pool 16, stages 8, 4, 2: every strided window meets an even map, where PyTorch's
# padding and TensorFlow's "same" differ
for _name, _resize in _RESIZE.items():
    register_upstream(Upstream(
        source="torchvision", name=_name, model=_name, mapping=torch_rule(_TORCH),
        # the widths differ, the names do not: build(<variant>, weights=...) checks the shapes
        signature=("conv1.0.weight", "stage4.3.branch2.6.weight", "conv5.1.running_var"),
        preprocessing=imagenet(224, _resize), head=("fc.*",), reference=f"torchvision.models.{_name}",
        golden_input=64, slow=_name != "shufflenet_v2_x1_0"))
