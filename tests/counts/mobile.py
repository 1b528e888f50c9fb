"""Reference trainable parameter counts of the mobile family (1000 classes, default options).

keras.applications figures are trainable counts of ``keras.applications.<Model>(weights=None)`` in the project's
venv (their EfficientNet adds Rescaling/Normalization layers with 7 non-trainable weights, and every model's
BN moving statistics are non-trainable, so only trainable counts compare); torchvision figures are the
``num_params`` of its weight metadata, which counts BN affine parameters only, like ours.
"""

_V1_SOURCE = ("sum over Table 1 (g={g}) in the authors' release layout (megvii-model/ShuffleNet-Series "
              "ShuffleNetV1; its README gives {megvii} for a bias-free classifier) + 1,000 classifier biases")

# name: (build kwargs, trainable parameters, source)
REFERENCE = {
    "squeezenet1_0": ({}, 1_248_424, "torchvision squeezenet1_0 num_params; paper Table 1 total 1,248,424"),
    "squeezenet1_1": ({}, 1_235_496, "torchvision squeezenet1_1 num_params"),
    "mobilenet_v1": ({}, 4_231_976, "keras.applications MobileNet trainable (paper: 4.2M)"),
    "mobilenet_v2": ({}, 3_504_872, "torchvision mobilenet_v2 num_params = keras.applications MobileNetV2 "
                                    "trainable (paper Table 4: 3.4M)"),
    "mobilenet_v3_large": ({}, 5_483_032, "torchvision mobilenet_v3_large num_params = keras.applications "
                                          "MobileNetV3Large trainable (paper Table 3: 5.4M)"),
    "mobilenet_v3_small": ({}, 2_542_856, "torchvision mobilenet_v3_small num_params = keras.applications "
                                          "MobileNetV3Small trainable (paper Table 3: 2.5M)"),
    "shufflenet_v1_g1": ({}, 1_531_936, _V1_SOURCE.format(g=1, megvii="no g=1 model")),
    "shufflenet_v1_g2": ({}, 1_733_848, _V1_SOURCE.format(g=2, megvii="no g=2 model")),
    "shufflenet_v1_g3": ({}, 1_865_728, _V1_SOURCE.format(g=3, megvii="1.9M")),
    "shufflenet_v1_g4": ({}, 1_968_344, _V1_SOURCE.format(g=4, megvii="no g=4 model")),
    "shufflenet_v1_g8": ({}, 2_434_768, _V1_SOURCE.format(g=8, megvii="2.4M")),
    "shufflenet_v2_x0_5": ({}, 1_366_792, "torchvision shufflenet_v2_x0_5 num_params"),
    "shufflenet_v2_x1_0": ({}, 2_278_604, "torchvision shufflenet_v2_x1_0 num_params (paper Table 5: 2.3M)"),
    "shufflenet_v2_x1_5": ({}, 3_503_624, "torchvision shufflenet_v2_x1_5 num_params (paper Table 5: 3.5M)"),
    "shufflenet_v2_x2_0": ({}, 7_393_996, "torchvision shufflenet_v2_x2_0 num_params (paper Table 5: 7.4M)"),
    "efficientnet_b0": ({}, 5_288_548, "keras.applications EfficientNetB0 trainable = torchvision num_params "
                                       "(paper Table 2: 5.3M)"),
    "efficientnet_b1": ({}, 7_794_184, "keras.applications EfficientNetB1 trainable = torchvision num_params"),
    "efficientnet_b2": ({}, 9_109_994, "keras.applications EfficientNetB2 trainable = torchvision num_params"),
    "efficientnet_b3": ({}, 12_233_232, "keras.applications EfficientNetB3 trainable = torchvision num_params"),
    "efficientnet_b4": ({}, 19_341_616, "keras.applications EfficientNetB4 trainable = torchvision num_params"),
    "efficientnet_b5": ({}, 30_389_784, "keras.applications EfficientNetB5 trainable = torchvision num_params"),
    "efficientnet_b6": ({}, 43_040_704, "keras.applications EfficientNetB6 trainable = torchvision num_params"),
    "efficientnet_b7": ({}, 66_347_960, "keras.applications EfficientNetB7 trainable = torchvision num_params "
                                        "(paper Table 2: 66M)"),
}
