"""Reference parameter counts of the DenseNet family.

The ImageNet models match torchvision. DenseNet-264 is in neither torchvision nor Keras; the CIFAR models are
given in the paper to one decimal (Table 2, C10: 0.8M, 15.3M, 25.6M). For those rows the exact figure is
``derived_count`` below, the count worked out from the paper's architecture (§3 and Table 1, and the authors'
Lua code: bias-free convolutions, 2k initial maps, floor(θ·m) transition maps) with no reference to our
builder; tests/test_densenet.py checks that it reproduces every row, including the torchvision ones.
"""


def derived_count(block_config, growth_rate, classes, *, stem="imagenet", init_features=None, compression=0.5,
                  bottleneck_width=4):
    """Trainable parameters of a DenseNet: convolution kernels, BN scale and offset, classifier weights and bias.

    ``bottleneck_width=0`` is a layer without bottleneck (BN-ReLU-3x3 conv).
    """
    k = growth_rate
    channels = 2 * k if init_features is None else init_features
    # ImageNet: 7x7 conv + BN; CIFAR: 3x3 conv straight into the first dense layer's BN
    total = 7 * 7 * 3 * channels + 2 * channels if stem == "imagenet" else 3 * 3 * 3 * channels
    for index, layers in enumerate(block_config):
        for _ in range(layers):
            if bottleneck_width:
                inner = bottleneck_width * k
                total += 2 * channels + channels * inner + 2 * inner + 9 * inner * k
            else:
                total += 2 * channels + 9 * channels * k
            channels += k
        if index < len(block_config) - 1:
            reduced = int(compression * channels)
            total += 2 * channels + channels * reduced
            channels = reduced
    return total + 2 * channels + channels * classes + classes


_DERIVED = "derived_count (paper §3, Table 1/2; authors' Lua code)"

# name: (build kwargs, trainable parameters, source)
REFERENCE = {
    "densenet121": ({}, 7_978_856, "torchvision densenet121"),
    "densenet169": ({}, 14_149_480, "torchvision densenet169"),
    "densenet201": ({}, 20_013_928, "torchvision densenet201"),
    "densenet161": ({}, 28_681_000, "torchvision densenet161"),
    "densenet264": ({}, 33_337_704,
                    f"{_DERIVED}; Pleiss et al. 2017 tech report: 264 layers, k=32, 33M; PaddleClas DenseNet264 "
                    "33.74M counts BN moving statistics too (ours: 33,736,232 in all)"),
    "densenet_bc_100": ({"classes": 10}, 769_162, f"{_DERIVED}; paper Table 2, L=100 k=12: 0.8M"),
    "densenet_bc_250": ({"classes": 10}, 15_324_406, f"{_DERIVED}; paper Table 2, L=250 k=24: 15.3M"),
    "densenet_bc_190": ({"classes": 10}, 25_624_430, f"{_DERIVED}; paper Table 2, L=190 k=40: 25.6M"),
}

# Arguments of derived_count for each row: the paper's table values, written out independently of the builder.
DERIVATION = {
    "densenet121": {"block_config": (6, 12, 24, 16), "growth_rate": 32, "classes": 1000},
    "densenet169": {"block_config": (6, 12, 32, 32), "growth_rate": 32, "classes": 1000},
    "densenet201": {"block_config": (6, 12, 48, 32), "growth_rate": 32, "classes": 1000},
    "densenet161": {"block_config": (6, 12, 36, 24), "growth_rate": 48, "classes": 1000},
    "densenet264": {"block_config": (6, 12, 64, 48), "growth_rate": 32, "classes": 1000},
    # CIFAR DenseNet-BC: three blocks of (L - 4) / 6 bottleneck layers
    "densenet_bc_100": {"block_config": (16,) * 3, "growth_rate": 12, "classes": 10, "stem": "cifar"},
    "densenet_bc_250": {"block_config": (41,) * 3, "growth_rate": 24, "classes": 10, "stem": "cifar"},
    "densenet_bc_190": {"block_config": (31,) * 3, "growth_rate": 40, "classes": 10, "stem": "cifar"},
}
