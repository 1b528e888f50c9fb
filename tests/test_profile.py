"""keras_cnn.profile: per-layer parameters and MACs against the seeds' tables and the GMAC figures of
docs/benchmarks.md, the custom layers, nested and shared layers, the table, JSON and the ``keras-cnn profile``
command."""

import functools
import json
import pathlib
import re

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import cli
from keras_cnn.app import profile as profile_app
from keras_cnn.profile import LayerProfile, Profile, profile

VGG16_GROUP = pytest.mark.xdist_group("profile_vgg16")  # one worker builds the 138M-parameter model once


@functools.lru_cache(maxsize=None)
def profiled(name, **kwargs):
    """The profile of ``keras_cnn.build(name, **kwargs)`` and the model's ``count_params()``; the model is not
    kept (a pytest worker lives on, and VGG-16 alone is 0.5 GB)."""
    model = keras_cnn.build(name, **kwargs)
    return profile(model), model.count_params()


# Seed 000, §2.3 VGGNet, "VGG-16(D系列)结构" table: (keras_cnn layer, 输出尺寸, 参数量, MACs in M as printed ("-":
# None), MACs in M where the printed figure is wrong). The seed's MACs of the convolutions are wrong: every conv
# of blocks 1-4 is "~173 M" and of block 5 "~86 M", and they sum (with the FC rows) to 2.1 G where its own total
# says ~15.5 G. 173 M is 2 x 86.7 M, the FLOPs of block1_conv1; the others are H*W*C_out*9*C_in (the seed's
# convention, in which its FC rows, its parameter counts and its total are right). The corrected column is that
# formula at the seed's precision (whole M); the test checks that it adds up to the seed's total.
VGG16_SEED_000 = [
    ("block1_conv1", (224, 224, 64), 1_792, 173, 87),
    ("block1_conv2", (224, 224, 64), 36_928, 173, 1850),
    ("block1_pool", (112, 112, 64), 0, None, None),
    ("block2_conv1", (112, 112, 128), 73_856, 173, 925),
    ("block2_conv2", (112, 112, 128), 147_584, 173, 1850),
    ("block2_pool", (56, 56, 128), 0, None, None),
    ("block3_conv1", (56, 56, 256), 295_168, 173, 925),
    ("block3_conv2", (56, 56, 256), 590_080, 173, 1850),
    ("block3_conv3", (56, 56, 256), 590_080, 173, 1850),
    ("block3_pool", (28, 28, 256), 0, None, None),
    ("block4_conv1", (28, 28, 512), 1_180_160, 173, 925),
    ("block4_conv2", (28, 28, 512), 2_359_808, 173, 1850),
    ("block4_conv3", (28, 28, 512), 2_359_808, 173, 1850),
    ("block4_pool", (14, 14, 512), 0, None, None),
    ("block5_conv1", (14, 14, 512), 2_359_808, 86, 462),
    ("block5_conv2", (14, 14, 512), 2_359_808, 86, 462),
    ("block5_conv3", (14, 14, 512), 2_359_808, 86, 462),
    ("block5_pool", (7, 7, 512), 0, None, None),
    ("flatten", (25088,), 0, None, None),
    ("fc6", (4096,), 102_764_544, 103, None),
    ("fc7", (4096,), 16_781_312, 17, None),
    ("predictions", (1000,), 4_097_000, 4, None),
]

# Seed 003, 二、AlexNet §2.1, the parameter table (输出 Tensor size, 权重个数, 偏置个数, 参数数量); total 62,378,344.
# The seed's 第6层 is fc6 as a 6x6 convolution on the 6x6x256 map; keras_cnn's is Flatten + Dense (same weights).
ALEXNET_SEED_003 = [
    ("conv1", (55, 55, 96), 34_848, 96, 34_944),
    ("pool1", (27, 27, 96), 0, 0, 0),
    ("lrn1", (27, 27, 96), 0, 0, 0),
    ("conv2", (27, 27, 256), 614_400, 256, 614_656),
    ("pool2", (13, 13, 256), 0, 0, 0),
    ("lrn2", (13, 13, 256), 0, 0, 0),
    ("conv3", (13, 13, 384), 884_736, 384, 885_120),
    ("conv4", (13, 13, 384), 1_327_104, 384, 1_327_488),
    ("conv5", (13, 13, 256), 884_736, 256, 884_992),
    ("pool5", (6, 6, 256), 0, 0, 0),
    ("fc6", (4096,), 37_748_736, 4096, 37_752_832),
    ("fc6_dropout", (4096,), 0, 0, 0),
    ("fc7", (4096,), 16_777_216, 4096, 16_781_312),
    ("fc7_dropout", (4096,), 0, 0, 0),
    ("predictions", (1000,), 4_096_000, 1000, 4_097_000),
]

# docs/benchmarks.md, "keras_cnn against keras.applications" table (GMACs column).
BENCHMARKS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
DOCS_GMACS = [("resnet50", "4.09"), ("densenet121", "2.83"), ("mobilenet_v2", "0.30"), ("efficientnet_b0", "0.39"),
                ("inception_v3", "5.71"), ("xception", "8.36"), ("vgg16", "15.47")]


@VGG16_GROUP
def test_vgg16_matches_the_seed_000_table_row_by_row():
    result, count = profiled("vgg16")
    # the seed's table leaves out keras_cnn's two Dropout layers (fc6_dropout, fc7_dropout: nothing to count)
    assert [row.name for row in result.rows if row.kind != "Dropout"] == [r[0] for r in VGG16_SEED_000]
    assert {(row.params, row.macs) for row in result.rows if row.kind == "Dropout"} == {(0, 0)}
    for name, shape, params, seed_macs, corrected in VGG16_SEED_000:
        row = result[name]
        expected = corrected if corrected is not None else seed_macs or 0
        assert (row.output_shape, row.params, round(row.macs / 1e6)) == (shape, params, expected), name
    # the seed's totals: ~138M parameters, ~15.5 G MACs; the corrected rows add up to the latter
    assert round(result.total_params / 1e6) == 138 and round(result.gmacs, 1) == 15.5
    assert round(sum(r[4] or r[3] or 0 for r in VGG16_SEED_000) / 1e3, 1) == 15.5
    assert result.total_params == count == 138_357_544


def test_alexnet_parameters_match_the_seed_003_table_row_by_row():
    model = keras_cnn.build("alexnet")
    result = profile(model)
    assert result.input_shape == (227, 227, 3)  # the seed's 第0层: 227x227x3
    assert [row.name for row in result.rows if row.name not in {r[0] for r in ALEXNET_SEED_003}] == ["flatten"]
    for name, shape, weights, biases, params in ALEXNET_SEED_003:
        layer = model.get_layer(name)
        kernel, bias = (int(np.prod(w.shape)) for w in (layer.kernel, layer.bias)) if layer.weights else (0, 0)
        assert (result[name].output_shape, kernel, bias, result[name].params) == (shape, weights, biases, params), \
            name
    assert result.total_params == 62_378_344


@pytest.mark.parametrize("name, gmacs", [pytest.param(n, g, marks=[VGG16_GROUP] if n == "vgg16" else [])
                                         for n, g in DOCS_GMACS])
def test_the_documented_gmac_figures(name, gmacs):
    result, count = profiled(name)
    assert f"{result.gmacs:.2f}" == gmacs
    row = rf"^\| {name} \|[^|]*\| {re.escape(gmacs)}[ /|]"
    assert re.search(row, BENCHMARKS.read_text(encoding="utf-8"), re.M)
    assert result.total_params == count


def test_keras_applications_resnet50_has_the_documented_figure():
    """docs/benchmarks.md: keras.applications' ResNet-50 strides the first 1x1 of a downsampling bottleneck:
    3.86 GMACs."""
    model = keras.applications.ResNet50(weights=None)
    assert f"{profile(model).gmacs:.2f}" == "3.86" and profile(model).total_params == model.count_params()
    assert re.search(r"^\| resnet50 \|[^|]*\| 4\.09 / 3\.86 \|", BENCHMARKS.read_text(encoding="utf-8"), re.M)


@VGG16_GROUP
def test_the_documented_dense_evaluation_figures():
    """docs/benchmarks.md, dense evaluation: 45.1 GMAC of VGG-16's convolutions at 384², 3.7 GMAC for fc6 on the
    6x6 map."""
    assert f"{profile('vgg16', include_top=False, input_shape=(384, 384, 3)).gmacs:.1f}" == "45.1"
    assert f"{36 * profiled('vgg16')[0]['fc6'].macs / 1e9:.1f}" == "3.7"
    text = BENCHMARKS.read_text(encoding="utf-8")
    assert "45.1 GMAC of convolutions at 384² plus 3.7 GMAC for fc6" in " ".join(text.split())


def test_memory_efficient_densenet_counts_its_custom_layers_like_the_plain_one():
    plain, fused = profile("densenet_bc_100"), profile("densenet_bc_100", memory_efficient=True)
    assert (fused.total_macs, fused.total_params) == (plain.total_macs, plain.total_params)
    custom = [row for row in fused.rows if row.kind == "ConcatBNReLUConv"]
    assert len(custom) == 48 + 2  # the dense layers' and transitions' first BN-ReLU-conv
    for row in custom:  # block1_layer1_concat_conv1 = bn1 + relu1 + conv1 of the plain model (transitions: bn, conv)
        base, conv = row.name.split("_concat_")
        assert row.macs == plain[f"{base}_{conv}"].macs > 0
        assert row.params == plain[f"{base}_{conv}"].params + plain[f"{base}_{conv.replace('conv', 'bn')}"].params


def test_stochastic_depth_branches_are_walked_as_nested_models():
    plain, nested = profile("resnet20"), profile("resnet20", drop_path_rate=0.2, drop_path_mode="batch")
    assert (nested.total_macs, nested.total_params) == (plain.total_macs, plain.total_params)
    row = nested["stage1_block1_residual/stage1_block1_conv1"]
    assert (row.output_shape, row.macs) == ((32, 32, 16), plain["stage1_block1_conv1"].macs)
    assert (nested["stage1_block1_add"].kind, nested["stage1_block1_add"].macs) == ("StochasticDepth", 0)


def test_grouped_split_and_depthwise_pooling_forms_agree():
    """ShuffleNet v1: grouped conv native vs split (per-group Conv2D), average pooling vs the constant depthwise
    convolution (0 MACs, like the pooling it replaces)."""
    kwargs = {"input_shape": (32, 32, 3), "scale": 0.5, "classes": 10}
    native = profile("shufflenet_v1_g3", **kwargs)
    int8_form = profile("shufflenet_v1_g3", grouped_conv="split", shortcut_pool="depthwise", **kwargs)
    assert (int8_form.total_macs, int8_form.total_params) == (native.total_macs, native.total_params)
    assert {row.kind for row in int8_form.rows} - {row.kind for row in native.rows} == {
        "ChannelSplit", "DepthwiseAveragePooling2D"}


def test_window_conv_of_to_fcn_counts_every_position():
    image = keras.Input((8, 8, 3))
    x = keras.layers.MaxPooling2D(name="pool")(keras.layers.Conv2D(4, 3, name="conv")(image))  # 3x3x4
    x = keras.layers.Dense(5, name="fc")(keras.layers.Flatten(name="flatten")(x))
    model = keras.Model(image, keras.layers.Dense(2, name="predictions")(x))
    dense, fcn = profile(model), keras_cnn.to_fcn(model)
    same = profile(fcn, input_shape=(8, 8, 3))  # no Flatten row: fewer activation bytes
    assert (same.total_macs, same.total_params) == (dense.total_macs, dense.total_params)
    wide = profile(fcn, input_shape=(16, 16, 3))  # pool: 7x7, fc (3x3 window): 5x5 positions
    assert (wide["fc"].kind, wide["fc"].output_shape) == ("WindowConv2D", (5, 5, 5))
    assert (wide["fc"].macs, wide["predictions"].macs) == (25 * dense["fc"].macs, 25 * dense["predictions"].macs)


def test_shared_layers_nested_models_and_mixed_precision():
    inner = keras.Sequential([keras.Input((8, 8, 4)), keras.layers.Conv2D(2, 1, name="inner_conv")], name="inner")
    x = image = keras.Input((8, 8, 3))
    shared = keras.layers.Conv2D(3, 3, padding="same", name="shared")
    half = keras.layers.DepthwiseConv2D(3, padding="same", dtype="mixed_float16", name="half")
    x = keras.layers.SeparableConv2D(3, 3, padding="same", name="sep")(x)
    x = inner(half(keras.layers.Conv2D(4, 1, name="widen")(shared(shared(x)))))
    model = keras.Model(image, keras.layers.Dense(5, name="head")(keras.layers.Flatten(name="flat")(x)))
    result = profile(model)
    assert [r.name for r in result.rows] == ["sep", "shared", "shared#2", "widen", "half", "inner/inner_conv",
                                             "flat", "head"]
    assert (result["shared"].params, result["shared#2"].params) == (3 * 9 * 3 + 3, 0)
    assert result["shared"].macs == result["shared#2"].macs == 64 * 9 * 3 * 3
    assert result["sep"].macs == 64 * (9 * 3 + 3 * 3)
    assert result["half"].macs == 64 * 4 * 9 and result["half"].activation_bytes == 64 * 4 * 2
    assert result["inner/inner_conv"].macs == 64 * 4 * 2 and result["head"].macs == 128 * 5
    assert result.total_params == model.count_params()


def test_table_json_and_rows():
    result = profile("lenet5")
    lines = str(result).splitlines()
    assert lines[0].split() == ["layer", "type", "output", "shape", "params", "MACs", "activations", "(B)"]
    assert len(lines) == 1 + 1 + len(result.rows) + 1 + 1 + 1 and set(lines[1]) == {"-"} == set(lines[-3])
    assert len({len(line) for line in lines[:-1]}) == 1  # aligned: every column right-aligned at one place
    assert [line.split()[0] for line in lines[2:-3]] == [row.name for row in result.rows]
    assert lines[2].split() == ["c1", "Conv2D", "28x28x6", "156", "117,600", "18,816"]
    assert lines[-2].split()[-3:] == [f"{result.total_params:,}", f"{result.total_macs:,}",
                                      f"{result.total_activation_bytes:,}"]
    assert lines[-1].startswith("lenet5, input 32x32x1, batch 1: 145.86 K params") and "499.68 KMACs" in lines[-1]
    assert result.table() == str(result)
    data = json.loads(result.to_json())
    assert data["totals"]["macs"] == result.total_macs == 499_680 and len(data["layers"]) == len(result.rows)
    assert data["layers"][0] == {"name": "c1", "kind": "Conv2D", "output_shape": [28, 28, 6], "params": 156,
                                 "trainable_params": 156, "non_trainable_params": 0, "macs": 117_600,
                                 "activation_bytes": 18_816}
    assert isinstance(result, Profile) and isinstance(result.rows[0], LayerProfile)
    with pytest.raises(KeyError, match="no layer named 'c9'"):
        result["c9"]


@pytest.mark.parametrize("call, error, fragment", [pytest.param(*case, id=case[2][:30]) for case in [
    (lambda: profile(3), TypeError, "model_or_name must be a keras.Model; received int"),
    (lambda: profile("vgg17"), ValueError, "Unknown model name 'vgg17'"),
    (lambda: profile(keras_cnn.build("lenet5"), classes=3), TypeError, "accepts only input_shape; received classes"),
    (lambda: profile(keras_cnn.build("lenet5"), input_shape=(32, 32)), ValueError, "input_shape must be a tuple of 3"),
    (lambda: profile(keras_cnn.build("lenet5"), input_shape=(64, 64, 1)), ValueError, "does not fit the model's input"),
    (lambda: profile(keras_cnn.build("lenet5", input_shape=(None, None, 1), include_top=False)), ValueError,
     "pass input_shape=(H, W, C)"),
]])
def test_bad_arguments(call, error, fragment):
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_profile_command(capsys):
    result = profile_app.main(["--model", "lenet5", "--input-size", "40", "40", "3", "--option", "pool=max"])
    out = capsys.readouterr().out
    assert result.input_shape == (40, 40, 3) and out.strip() == result.table()
    assert cli.main(["profile", "--model", "lenet5", "--image-size", "36", "--classes", "10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["input_shape"], data["layers"][-1]["output_shape"]) == ([36, 36, 1], [10])
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["profile", "--model", "lenet5", "--option", "wings=2"])
    assert str(excinfo.value.code).startswith("keras-cnn profile: error: --option wings=2: Unknown option(s)")
