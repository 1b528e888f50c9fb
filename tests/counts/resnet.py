"""Reference parameter counts of the residual family (ResNet v1/v2, CIFAR ResNets, ResNeXt, SENet)."""

CIFAR10 = {"classes": 10}
# He et al. 2016b / fb.resnet.torch preresnet.lua / timm resnetv2_*: pytorchcv's preresnetXX is 128 higher
# because it keeps a 64-channel BN both after conv1 and at the start of the first unit.
PREACT = "pre-activation layer list (He et al. 2016b; fb.resnet.torch preresnet.lua, timm resnetv2), no conv biases"

# name: (build kwargs, trainable parameters, source)
REFERENCE = {
    "resnet18": ({}, 11_689_512, "torchvision resnet18"),
    "resnet34": ({}, 21_797_672, "torchvision resnet34"),
    "resnet50": ({}, 25_557_032, "torchvision resnet50"),
    "resnet101": ({}, 44_549_160, "torchvision resnet101"),
    "resnet152": ({}, 60_192_808, "torchvision resnet152"),
    "resnet18_v2": ({}, 11_687_720, f"{PREACT}; pytorchcv preresnet18 11,687,848 - 128"),
    "resnet34_v2": ({}, 21_795_880, f"{PREACT}; pytorchcv preresnet34 21,796,008 - 128"),
    "resnet50_v2": ({}, 25_549_352, f"{PREACT}; pytorchcv preresnet50 25,549,480 - 128"),
    "resnet101_v2": ({}, 44_541_480, f"{PREACT}; pytorchcv preresnet101 44,541,608 - 128"),
    "resnet152_v2": ({}, 60_185_128, f"{PREACT}; pytorchcv preresnet152 60,185,256 - 128"),
    "resnet200_v2": ({}, 64_666_152, f"{PREACT}; pytorchcv preresnet200 64,666,280 - 128"),
    # He et al. 2016 Table 6 (0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M), option A shortcuts, 10 classes; exact
    # totals as akamaster/pytorch_resnet_cifar10: 269,722 + 97,216 per extra block in each stage.
    "resnet20": (CIFAR10, 269_722, "He et al. 2016 Table 6: 0.27M (akamaster/pytorch_resnet_cifar10)"),
    "resnet32": (CIFAR10, 464_154, "He et al. 2016 Table 6: 0.46M (akamaster/pytorch_resnet_cifar10)"),
    "resnet44": (CIFAR10, 658_586, "He et al. 2016 Table 6: 0.66M (akamaster/pytorch_resnet_cifar10)"),
    "resnet56": (CIFAR10, 853_018, "He et al. 2016 Table 6: 0.85M (akamaster/pytorch_resnet_cifar10)"),
    "resnet110": (CIFAR10, 1_727_962, "He et al. 2016 Table 6: 1.7M (akamaster/pytorch_resnet_cifar10)"),
    "resnet1202": (CIFAR10, 19_421_274, "He et al. 2016 Table 6: 19.4M (akamaster/pytorch_resnet_cifar10)"),
    "resnet164_v2": (CIFAR10, 1_703_258, "He et al. 2016b: 1.7M; pytorchcv preresnet164bn_cifar10"),
    "resnet1001_v2": (CIFAR10, 10_327_706, "He et al. 2016b: 10.2M; pytorchcv preresnet1001_cifar10"),
    "resnext50_32x4d": ({}, 25_028_904, "torchvision resnext50_32x4d"),
    "resnext101_32x4d": ({}, 44_177_704, "Cadene pretrainedmodels resnext101_32x4d"),
    "resnext101_32x8d": ({}, 88_791_336, "torchvision resnext101_32x8d"),
    "resnext101_64x4d": ({}, 83_455_272, "torchvision resnext101_64x4d"),
    "se_resnet50": ({}, 28_088_024, "Cadene pretrainedmodels se_resnet50 (timm legacy_seresnet50)"),
    "se_resnet101": ({}, 49_326_872, "Cadene pretrainedmodels se_resnet101"),
    "se_resnet152": ({}, 66_821_848, "Cadene pretrainedmodels se_resnet152"),
    "se_resnext50_32x4d": ({}, 27_559_896, "Cadene pretrainedmodels se_resnext50_32x4d"),
    "se_resnext101_32x4d": ({}, 48_955_416, "Cadene pretrainedmodels se_resnext101_32x4d"),
    "senet154": ({}, 115_088_984, "Cadene pretrainedmodels senet154"),
}
