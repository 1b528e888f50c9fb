"""SqueezeNet 1.0 and 1.1 (Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and
<0.5MB model size", 2016; seed 003 §9.1.1).

Table 1 of the paper as data: ``(fire index, s1x1, e1x1, e3x3)`` per Fire module and the layers followed by 3x3/2
max pooling (conv1, fire4, fire8: "late downsampling", strategy 3). SqueezeNet 1.1 (the authors' v1.1 release,
torchvision ``squeezenet1_1``) has a 3x3 conv1 of 64 maps and pools earlier (after conv1, fire3, fire5).
Spec and options (CONTRIBUTING.md): a variant's architecture is its :class:`SqueezeNetSpec` row; the options are
dropout and the paper's bypass connections (§6), which apply to either row.
"""

import dataclasses

import keras

from keras_cnn import _validate
from keras_cnn.layers.fire import fire
from keras_cnn.layers.pooling import CeilModeMaxPooling2D
from keras_cnn.registry import register

FIRES = ((2, 16, 64, 64), (3, 16, 64, 64), (4, 32, 128, 128), (5, 32, 128, 128),
         (6, 48, 192, 192), (7, 48, 192, 192), (8, 64, 256, 256), (9, 64, 256, 256))


@dataclasses.dataclass(frozen=True)
class SqueezeNetSpec:
    """One SqueezeNet version: Table 1 of the paper (1.0) or the authors' v1.1 release."""

    conv1: tuple  # (filters, kernel) of the 2-strided first convolution
    pool_after: tuple  # layers followed by 3x3/2 max pooling (1 = conv1, i = fire<i>)
    fires: tuple = FIRES  # (fire index, s1x1, e1x1, e3x3) per Fire module


# name: (spec row, torchvision's min_size)
SQUEEZENET = {
    "squeezenet1_0": (SqueezeNetSpec(conv1=(96, 7), pool_after=(1, 4, 8)), 21),
    "squeezenet1_1": (SqueezeNetSpec(conv1=(64, 3), pool_after=(1, 3, 5)), 17),
}
BYPASSES = (None, "simple", "complex")


def squeezenet(x, head, *, spec, bypass=None, dropout=0.5):
    """SqueezeNet (Iandola et al. 2016): conv1, Fire modules fire2-fire9, dropout, conv10 classifier + global average
    pooling (``head.convolutional``, ReLU on the class maps as in the paper and torchvision).

    Pooling rounds up (Caffe's ceil mode), which gives the paper's 55/27/13 maps at the Caffe crop of 227
    (the default input). ``bypass`` (§6): ``"simple"`` adds identity shortcuts around fire3, 5, 7 and 9 (the
    modules whose input and output widths match); ``"complex"`` also adds 1x1-convolution shortcuts (bias, no
    activation) around fire2, 4, 6 and 8. ``dropout`` (0.5) comes after fire9.
    """
    _validate.check_choice("bypass", bypass, BYPASSES)
    dropout = _validate.check_rate("dropout", dropout)
    filters, kernel = spec.conv1
    x = keras.layers.Conv2D(filters, kernel, strides=2, activation="relu", kernel_initializer="he_uniform",
                            name="conv1")(x)
    x = _pool(x, 1, spec)
    for index, squeeze, expand_1x1, expand_3x3 in spec.fires:
        name = f"fire{index}"
        y = fire(x, squeeze, expand_1x1, expand_3x3, name=name)
        x = _bypass(x, y, bypass, name)
        x = _pool(x, index, spec)
    return head.convolutional(x, activation="relu", dropout=dropout)


def _bypass(x, y, bypass, name):
    if bypass is None:
        return y
    if x.shape[-1] != y.shape[-1]:
        if bypass == "simple":
            return y
        x = keras.layers.Conv2D(y.shape[-1], 1, name=f"{name}_bypass")(x)
    return keras.layers.Add(name=f"{name}_add")([x, y])


def _pool(x, index, spec):
    if index not in spec.pool_after:
        return x
    return CeilModeMaxPooling2D(3, strides=2, name=f"pool{index}")(x)


for _name, (_spec, _min_input) in SQUEEZENET.items():
    register(_name, family="squeezenet", default_input=(227, 227, 3), min_input=_min_input, spec=_spec)(squeezenet)
