"""Reference parameter counts of the classic family."""

# name: (build kwargs, trainable parameters, source)
REFERENCE = {
    "lenet5": ({"classes": 10}, 61_706,
               "LeCun et al. 1998 layer sizes with a fully connected C3 and a softmax output: "
               "156 + 2,416 + 48,120 + 10,164 + 850"),
    "alexnet": ({}, 62_378_344, "seed 003 §2.1 AlexNet parameter table (total 62,378,344)"),
    "alexnet_owt": ({}, 61_100_840, "torchvision alexnet (61,100,840 in its weights' metadata)"),
    "nin": ({}, 7_595_176, "Caffe model zoo NIN-Imagenet (Lin et al. 2014): conv1..cccp8-1024"),
    "vgg11": ({}, 132_863_336, "torchvision vgg11 (paper Table 2: 133M)"),
    "vgg11_lrn": ({}, 132_863_336, "paper Table 2: A-LRN has A's 133M (LRN has no parameters)"),
    "vgg13": ({}, 133_047_848, "torchvision vgg13 (paper Table 2: 133M)"),
    "vgg16_c": ({}, 133_638_952, "paper Table 2: C 134M; = vgg16 - 8*(256^2 + 2*512^2) for three 1x1 convs"),
    "vgg16": ({}, 138_357_544, "torchvision vgg16 (paper Table 2: 138M)"),
    "vgg19": ({}, 143_667_240, "torchvision vgg19 (paper Table 2: 144M)"),
    "vgg11_bn": ({}, 132_868_840, "torchvision vgg11_bn"),
    "vgg13_bn": ({}, 133_053_736, "torchvision vgg13_bn"),
    "vgg16_bn": ({}, 138_365_992, "torchvision vgg16_bn"),
    "vgg19_bn": ({}, 143_678_248, "torchvision vgg19_bn"),
}
