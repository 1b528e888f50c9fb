"""SqueezeNet: torchvision's ``squeezenet1_0`` and ``squeezenet1_1``.

keras_cnn's SqueezeNet is torchvision's function: unpadded conv1, ceil-mode 3x3/2 max pooling
(:class:`keras_cnn.layers.CeilModeMaxPooling2D`), Fire modules, and the classifier Dropout, 1x1 conv, ReLU,
global average (``Head.convolutional`` with ReLU).
"""

from keras_cnn.models.squeezenet import SQUEEZENET
from keras_cnn.weights._catalog import Upstream, imagenet, register_upstream
from keras_cnn.weights._mapping import substitute, torch_rule


def _features(spec):
    """keras_cnn layer -> index in torchvision's ``features`` Sequential: conv1, ReLU, then a Fire module per
    index, a max pooling after conv1 and after the layers of ``spec.pool_after``."""
    names = {"conv1": "features.0"}
    index = 2 + (1 in spec.pool_after)
    for fire, *_ in spec.fires:
        names[f"fire{fire}"] = f"features.{index}"
        index += 1 + (fire in spec.pool_after)
    return names


def _mapping(spec):
    features = _features(spec)
    return torch_rule(substitute([
        (r"conv1", features["conv1"]),
        (r"(fire\d+)_(squeeze|expand1x1|expand3x3)(?:1x1)?", lambda m: f"{features[m[1]]}.{m[2]}"),
        (r"classifier_conv", "classifier.1"),  # classifier = Dropout, Conv2d, ReLU, AdaptiveAvgPool2d
    ]))


# golden inputs where every pooling meets an even map, so the ceil-mode overhang is used: 1.0 at 38 (conv1 16,
# pooled to 8, 4, 2), 1.1 at 34 (the same sizes after its 3x3 conv1). Small inputs also keep the logits of this
# network without BatchNorm input-dependent (0.17 and 0.11; 0.09 and 0.06 at 70 and 66)
for _name, _size in (("squeezenet1_0", 38), ("squeezenet1_1", 34)):
    _spec = SQUEEZENET[_name][0]
    _layers = _features(_spec)
    register_upstream(Upstream(
        source="torchvision", name=_name, model=_name, mapping=_mapping(_spec),
        # the Fire modules' positions tell 1.0 and 1.1 apart: fire4 is features.5 in 1.0 (which has no .6, a
        # pooling) and features.6 in 1.1 (which has no .5)
        signature=("features.0.weight", f"{_layers['fire4']}.squeeze.weight", f"{_layers['fire9']}.squeeze.weight",
                   "classifier.1.weight"),
        preprocessing=imagenet(224, 256), head=("classifier.1.*",), reference=f"torchvision.models.{_name}",
        golden_input=_size, slow=_name != "squeezenet1_1"))
