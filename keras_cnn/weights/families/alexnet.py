"""AlexNet: torchvision's ``alexnet`` as keras_cnn's ``alexnet_owt`` (its one-GPU row: 64-192-384-256-256 filters,
no LRN). The paper's ``alexnet`` (96-256-384-384-256, LRN) has no torchvision, timm or keras.applications
checkpoint."""

from keras_cnn.models.classic import ALEXNET_OWT
from keras_cnn.weights._catalog import Upstream, imagenet, register_upstream
from keras_cnn.weights._mapping import torch_rule
from keras_cnn.weights.families.vgg import flattened_linear


def _torchvision_features(spec):
    """keras_cnn convolution -> index in torchvision's ``features`` Sequential (conv, ReLU, [max pool])."""
    index, names = 0, {}
    for name, *_, pool in spec.convs:
        names[name] = f"features.{index}"
        index += 3 if pool else 2
    return names


def _torchvision_mapping(spec):
    # classifier: Dropout, Linear (fc6), ReLU, Dropout, Linear (fc7), ReLU, Linear; torchvision average-pools to
    # (256, 6, 6), the identity at 224x224, and flattens it channel-first
    names = {**_torchvision_features(spec), "fc6": flattened_linear("classifier.1", 256, 6),
             "fc7": "classifier.4", "predictions": "classifier.6"}
    return torch_rule(names.get)


register_upstream(Upstream(
    source="torchvision", name="alexnet", model="alexnet_owt", mapping=_torchvision_mapping(ALEXNET_OWT),
    signature=("features.0.weight", "features.10.weight", "classifier.1.weight"),
    preprocessing=imagenet(224, 256), options={"groups": 1}, head=("classifier.6.*",), top=("classifier.*",),
    reference="torchvision.models.alexnet", golden_input=224))
