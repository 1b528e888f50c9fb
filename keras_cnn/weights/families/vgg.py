"""VGG: torchvision's ``vgg11``-``vgg19`` and ``vgg*_bn``; keras.applications' ``VGG16`` and ``VGG19``."""

from keras_cnn.models.classic import VGG_VARIANTS
from keras_cnn.weights._catalog import CAFFE, Upstream, imagenet, register_upstream
from keras_cnn.weights._mapping import Source, flattened_dense, input_channels_reversed, keras_rule, torch, torch_rule

CI_ROWS = ("vgg11_bn",)  # the rules of every row (BN, flatten order); the other rows (130M+ parameters) run slow


def flattened_linear(path, channels, size):
    """The weights of a torchvision ``Linear`` after ``flatten`` of a ``(channels, size, size)`` map, for a Keras
    ``Dense`` after ``Flatten`` of ``(size, size, channels)``: the input rows are reordered (VGG's and AlexNet's
    fc6)."""
    return {"kernel": flattened_dense(f"{path}.weight", channels, size, size), "bias": torch(f"{path}.bias")}


def _torchvision_features(spec):
    """keras_cnn layer -> index in torchvision's ``features`` Sequential (conv, [BN], ReLU per layer; a pool per
    block)."""
    index, names = 0, {}
    for block, kernels in enumerate(spec.kernels, start=1):
        for conv in range(1, len(kernels) + 1):
            names[f"block{block}_conv{conv}"] = f"features.{index}"
            if spec.batch_norm:
                names[f"block{block}_conv{conv}_bn"] = f"features.{index + 1}"
            index += 3 if spec.batch_norm else 2
        index += 1  # max pool
    return names


def _torchvision_mapping(spec):
    # torchvision average-pools to (512, 7, 7) and flattens it channel-first: 224x224 inputs
    names = {**_torchvision_features(spec), "fc6": flattened_linear("classifier.0", 512, 7),
             "fc7": "classifier.3", "predictions": "classifier.6"}
    return torch_rule(names.get)


for _name in ("vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"):
    _spec = VGG_VARIANTS[_name]
    register_upstream(Upstream(
        source="torchvision", name=_name, model=_name, mapping=_torchvision_mapping(_spec),
        # the last convolution's index tells the depth (and BN) apart: hints name the right variant
        signature=("classifier.0.weight", f"{list(_torchvision_features(_spec).values())[-1]}.weight"),
        preprocessing=imagenet(224, 256), head=("classifier.6.*",), top=("classifier.*",),
        reference=f"torchvision.models.{_name}", golden_input=224, slow=_name not in CI_ROWS))

# keras.applications VGG16/VGG19: the same layer names but fc1/fc2; "caffe" inputs (BGR, mean subtracted in
# 0-255), so the first convolution's input channels are reversed and the record asks RGB in [0, 1] with the mean.
_KERAS_NAMES = {"fc6": "fc1", "fc7": "fc2"}


def _keras_rename(layer):
    path = _KERAS_NAMES.get(layer, layer)
    if layer == "block1_conv1":
        return {"kernel": input_channels_reversed(Source((f"{path}/kernel",))), "bias": Source((f"{path}/bias",))}
    return path


# the last convolution tells the depth apart, in the full files and in the ``_notop`` ones alike
for _name, _upstream, _last in (("vgg16", "VGG16", "block5_conv3"), ("vgg19", "VGG19", "block5_conv4")):
    register_upstream(Upstream(
        source="keras.applications", name=_upstream, model=_name, mapping=keras_rule(_keras_rename),
        signature=("block1_conv1/kernel", f"{_last}/kernel"),
        preprocessing=imagenet(224, 256, **CAFFE), head=("predictions/*",),
        top=("fc1/*", "fc2/*", "predictions/*")))
