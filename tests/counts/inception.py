"""Reference parameter counts of the Inception family and Xception (trainable parameters, 1000 classes).

Where no published total exists the source is an analytic derivation from the paper's figures, written out
below as arithmetic (weights + biases + BN parameters per stage) and checked against the built model.
"""

# Inception-ResNet-v1 (paper Figs. 10-15; BN without gamma: one beta per channel; 1x1 "up" projections biased).
IR_V1_STAGES = {
    "stem": 3 * 32 * 9 + 32 * 32 * 9 + 32 * 64 * 9 + 64 * 80 + 80 * 192 * 9 + 192 * 256 * 9
            + (32 + 32 + 64 + 80 + 192 + 256),
    "5 x block35": 5 * (3 * 256 * 32 + 3 * 32 * 32 * 9 + 6 * 32 + 96 * 256 + 256),
    "reduction_a (192, 192, 256, 384)": 256 * 384 * 9 + 256 * 192 + 192 * 192 * 9 + 192 * 256 * 9
                                        + (384 + 192 + 192 + 256),
    "10 x block17": 10 * (2 * 896 * 128 + 2 * 128 * 128 * 7 + 4 * 128 + 256 * 896 + 896),
    "reduction_b": 3 * 896 * 256 + 256 * 384 * 9 + 3 * 256 * 256 * 9 + (3 * 256 + 384 + 3 * 256),
    "5 x block8": 5 * (2 * 1792 * 192 + 2 * 192 * 192 * 3 + 4 * 192 + 384 * 1792 + 1792),
    "classifier": 1792 * 1000 + 1000,
}

# BN-Inception: the seed's table (003 §4.2) counts convolution and fc weights only and totals 11,264,111, but two
# rows are misprinted: inception-3a is 218,112 (not 218,094) and inception-4a 608,256 (not 608,193), so the
# weights total 11,264,192; the model adds the fc bias and BN's gamma and beta on 10,016 conv channels.
INCEPTION_V2_SEED_TABLE = {
    "conv1": 9_408, "conv2": 114_688, "3a": 218_094, "3b": 259_072, "3c": 384_000, "4a": 608_193, "4b": 663_552,
    "4c": 912_384, "4d": 1_140_736, "4e": 1_447_936, "5a": 2_205_696, "5b": 2_276_352, "fc": 1_024_000,
}
INCEPTION_V2_SEED_TOTAL = 11_264_111
INCEPTION_V2_CORRECTIONS = {"3a": 218_112, "4a": 608_256}
INCEPTION_V2_WEIGHTS = sum({**INCEPTION_V2_SEED_TABLE, **INCEPTION_V2_CORRECTIONS}.values())  # 11,264,192
INCEPTION_V2_BN_CHANNELS = 10_016

# SE-Inception-v3: an SE block (reduction r=16, biased 1x1 convolutions) on the output of each of the 11 modules
# adds C*C/r + C/r + C/r*C + C parameters for C = 256, 288, 288, 768 x 5, 1280, 2048, 2048.
SE_V3_WIDTHS = (256, 288, 288, 768, 768, 768, 768, 768, 1280, 2048, 2048)
SE_V3_ADDED = sum(2 * c * (c // 16) + c // 16 + c for c in SE_V3_WIDTHS)  # 1,661,620

# name: (build kwargs, trainable parameters, source)
REFERENCE = {
    "googlenet": ({}, 6_998_552,
                  "Caffe bvlc_googlenet without the loss1/loss2 heads (Szegedy et al. 2015 Table 1, biased "
                  "convolutions; the paper's rounded params column sums to 6,797.7K, the seed's 697.7万 "
                  "misprints it)"),
    "inception_v2": ({}, INCEPTION_V2_WEIGHTS + 1_000 + 2 * INCEPTION_V2_BN_CHANNELS,
                     "seed 003 §4.2 weight table (11,264,111 as printed; 11,264,192 with rows 3a/4a corrected) "
                     "+ fc bias 1,000 + BN gamma/beta 2 x 10,016 = 11,285,224"),
    "inception_v3": ({}, 23_817_352,
                     "keras.applications.InceptionV3: 23,851,784 parameters of which 34,432 are BN moving "
                     "statistics (torchvision inception_v3 without aux: 23,834,568 with BN gamma)"),
    "se_inception_v3": ({}, 23_817_352 + SE_V3_ADDED,
                        "analytic: inception_v3 23,817,352 + SE blocks sum(2*C*C/16 + C/16 + C) = 1,661,620"),
    "inception_v4": ({}, 42_648_232,
                     "timm / Cadene inception_v4 42,679,816 (BN with gamma) - 31,584 BN gamma of the TF-slim "
                     "BN without scale"),
    "inception_resnet_v1": ({}, sum(IR_V1_STAGES.values()),
                            "analytic from the paper's Figs. 10-15 (IR_V1_STAGES above) = 22,742,808"),
    "inception_resnet_v2": ({}, 55_813_192,
                            "keras.applications.InceptionResNetV2: 55,873,736 parameters of which 60,544 are BN "
                            "moving statistics (timm inception_resnet_v2: 55,843,464 with BN gamma)"),
    "xception": ({}, 22_855_952, "Chollet 2017 Table 3 (= keras.applications.Xception trainable parameters)"),
}

# Option variants with their own published counts, checked in tests/test_inception.py.
VARIANTS = {
    "googlenet bn, torchvision 3x3 '5x5' branch": (
        "googlenet", {"batch_norm": True, "kernel_5x5": 3}, 6_624_904, "torchvision googlenet(aux_logits=False)"),
    "googlenet bn, torchvision, aux": (
        "googlenet", {"batch_norm": True, "kernel_5x5": 3, "aux_logits": True}, 13_004_888,
        "torchvision googlenet(aux_logits=True)"),
    "inception_v3 with BN gamma": (
        "inception_v3", {"batch_norm_scale": True}, 23_834_568, "torchvision inception_v3(aux_logits=False)"),
    "inception_v3 with BN gamma, aux": (
        "inception_v3", {"batch_norm_scale": True, "aux_logits": True}, 27_161_264,
        "torchvision inception_v3(aux_logits=True)"),
    "inception_v4 with BN gamma": (
        "inception_v4", {"batch_norm_scale": True}, 42_679_816, "timm / Cadene pretrainedmodels inception_v4"),
    "inception_resnet_v2 with BN gamma": (
        "inception_resnet_v2", {"batch_norm_scale": True}, 55_843_464, "timm inception_resnet_v2"),
}
