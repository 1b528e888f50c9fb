"""Reliability sweep (issue #10): the one list of what every public entry point does with a bad argument.

Each row is a call, the exception type it must raise and fragments its message must contain: the argument's name
and what it allows or what it received. The exception must come from keras_cnn's own checks (the traceback's
last frame is in the package), never from deep inside TensorFlow or Keras, and no row may leave a file behind.
The command-line apps exit with that message as one line (argparse's own errors: usage and the flag, exit code
2), not with a traceback. Exports write all their files or none and replace existing ones only when told to.

Also in the sweep, tested where the feature lives:

* every registered model reloads with ``safe_mode=True`` and gives identical outputs:
  ``tests/test_models.py::test_save_and_reload_safe_mode``, parametrised over ``keras_cnn.list_models()``;
* training resumes after SIGKILL with nothing lost:
  ``tests/test_apps.py::test_sigkill_mid_epoch_then_the_same_command_resumes_and_finishes``.
"""

import functools
import os
import runpy
import subprocess
import sys
import traceback

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_cnn
from keras_cnn import _files, cli, evaluation, export
from keras_cnn import metrics as m
from keras_cnn.app import distribute, evaluate, recipes
from keras_cnn.callbacks import ClassificationMetrics
from keras_cnn.layers import DropPath

PACKAGE = os.path.dirname(os.path.abspath(keras_cnn.__file__))
ROOT = os.path.dirname(PACKAGE)


def raised_by_us(tb):
    """Whether the innermost frame of ``tb`` is keras_cnn code (not TensorFlow, Keras, NumPy or argparse)."""
    return os.path.abspath(traceback.extract_tb(tb)[-1].filename).startswith(PACKAGE + os.sep)


def case(name, call, error, *fragments):
    return pytest.param(call, error, fragments, id=name)


# ---------------------------------------------------------------- small models and data the rows share


@functools.cache
def lenet():
    """LeNet-5 on 32x32 grey images, 4 classes."""
    return keras_cnn.build("lenet5", input_shape=(32, 32, 1), classes=4)


@functools.cache
def tiny(kind):
    """Hand-made models with heads to_fcn cannot convert, and one of any input size."""
    inputs = keras.Input((8, 8, 1))
    features = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    if kind == "reshape":
        dense = keras.layers.Dense(4)(keras.layers.Flatten()(features))
        return keras.Model(inputs, keras.layers.Reshape((2, 2), name="odd_reshape")(dense))
    if kind == "keepdims":
        return keras.Model(inputs, keras.layers.GlobalAveragePooling2D(keepdims=True, name="gap")(features))
    if kind == "two_outputs":
        return keras.Model(inputs, [keras.layers.Flatten()(features), keras.layers.Flatten()(features)])
    if kind == "feature_map":  # a trunk without a classifier, ending in a position-wise layer
        return keras.Model(inputs, keras.layers.ReLU(name="relu")(features))
    any_size = keras.Input((None, None, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(any_size))
    return keras.Model(any_size, keras.layers.Dense(3, activation="softmax")(pooled))


X = np.zeros((1, 32, 32, 1), "float32")
Y3 = np.arange(20) % 3
S3 = np.random.default_rng(0).dirichlet(np.ones(3), 20)
ONE_HOT3 = np.eye(3)[Y3]


def one_shot():
    yield X, np.zeros(1)


def build(model="lenet5", **kwargs):
    return keras_cnn.build(model, **kwargs)


# ---------------------------------------------------------------- the rows

BUILD = [
    case("unknown-name", lambda: build("vgg61"), ValueError, "Unknown model name 'vgg61'", "Closest:", "vgg16"),
    case("misspelt-name", lambda: build("alexnt"), ValueError, "'alexnt'", "alexnet"),
    case("name-not-str", lambda: build(None), TypeError, "name must be a model name", "None"),
    case("model-name-override", lambda: build(name=3), TypeError, "name must be a string", "3"),
    case("list-models-pattern", lambda: keras_cnn.list_models(3), TypeError, "pattern must be a string", "3"),
    case("pooling", lambda: build(include_top=False, pooling="mean"), ValueError,
         "pooling must be one of None, 'avg', 'max'; received 'mean'"),
    case("pooling-with-top", lambda: build(pooling="avg"), ValueError,
         "pooling applies only when include_top=False", "pooling='avg'"),
    case("classes-zero", lambda: build(classes=0), ValueError, "classes must be >= 1; received 0"),
    case("classes-float", lambda: build(classes=2.5), TypeError, "classes must be an integer; received 2.5"),
    case("classes-bool", lambda: build(classes=True), TypeError, "classes must be an integer; received True"),
    case("classifier-activation", lambda: build(classifier_activation="softmaxx"), ValueError,
         "classifier_activation must be None, a callable or a Keras activation name", "'softmaxx'"),
    case("include-top", lambda: build(include_top="yes"), TypeError, "include_top must be True or False",
         "'yes'"),
    case("input-shape-rank", lambda: build(input_shape=(32, 32)), ValueError,
         "input_shape must be a (height, width, channels) tuple", "(32, 32)"),
    case("input-shape-str", lambda: build(input_shape="32"), ValueError, "input_shape must be a", "'32'"),
    case("input-shape-small", lambda: build(input_shape=(31, 31, 1)), ValueError, "too small for model 'lenet5'",
         "at least 32", "(31, 31, 1)"),
    case("input-shape-channels", lambda: build(input_shape=(32, 32, 0)), ValueError,
         "input_shape channels must be >= 1; received 0"),
    case("input-shape-channels-none", lambda: build(input_shape=(32, 32, None)), ValueError,
         "input_shape channels must be a known integer"),
    case("input-shape-float", lambda: build(input_shape=(32.0, 32, 1)), TypeError,
         "input_shape height must be an integer; received 32.0"),
    case("input-shape-variable-flatten", lambda: build(input_shape=(None, None, 1)), ValueError,
         "'lenet5' flattens", "fixed height and width"),
    case("input-tensor", lambda: build(input_tensor=X), TypeError, "input_tensor must be a Keras tensor", "ndarray"),
    case("weights-imagenet", lambda: build(weights="imagenet"), ValueError, "is not downloaded by keras_cnn",
         "'imagenet'"),
    case("weights-missing", lambda: build(weights="missing.weights.h5"), ValueError,
         "weights file 'missing.weights.h5' does not exist"),
    case("weights-type", lambda: build(weights=1), TypeError, "weights must be None or a path"),
    case("unknown-option", lambda: build(wings=2), TypeError, "Unknown option(s) 'wings' for model 'lenet5'",
         "its options are: activation, pool"),
    case("unknown-option-resnet-depth", lambda: build("resnet18", depth=50), TypeError,
         "Unknown option(s) 'depth' for model 'resnet18'",
         "conv_bias, downsample, drop_path_mode, drop_path_rate, dropout, shortcut, stem_norm, stride_in_1x1, "
         "zero_init_last"),
    case("no-options", lambda: build("shufflenet_v2_x1_0", width=2), TypeError, "'width'",
         "its options are: none"),
    case("lenet-pool", lambda: build(pool="median"), ValueError, "pool must be one of 'avg', 'max'; received 'median'"),
    case("lenet-activation", lambda: build(activation="squash"), ValueError,
         "activation must be a callable or a Keras activation name", "'squash'"),
    case("architecture-is-the-variant", lambda: build("vgg11", batch_norm=True), TypeError,
         "Unknown option(s) 'batch_norm' for model 'vgg11'", "its options are: dropout"),
    case("alexnet-groups", lambda: build("alexnet", groups=3), ValueError, "groups must be one of 1, 2; received 3"),
    case("drop-path-rate-one", lambda: build("resnet20", drop_path_rate=1.0), ValueError,
         "drop_path_rate must be in [0, 1); received 1.0"),
    case("drop-path-rate-negative", lambda: build("resnet20", drop_path_rate=-0.1), ValueError,
         "drop_path_rate must be in [0, 1); received -0.1"),
    case("drop-path-rate-str", lambda: build("resnet20", drop_path_rate="0.1"), TypeError,
         "drop_path_rate must be a number in [0, 1); received '0.1'"),
    case("drop-path-mode", lambda: build("resnet20", drop_path_mode="row"), ValueError,
         "drop_path_mode must be one of 'batch', 'sample'; received 'row'"),
    case("drop-path-layer-rate", lambda: DropPath(rate=1.0), ValueError, "rate must be in [0, 1); received 1.0"),
    case("drop-path-layer-rate-str", lambda: DropPath(rate="0.2"), TypeError,
         "rate must be a number in [0, 1); received '0.2'"),
    case("densenet-memory-efficient", lambda: build("densenet121", memory_efficient="yes"), TypeError,
         "memory_efficient must be True or False; received 'yes'"),
    case("mobilenet-alpha-zero", lambda: build("mobilenet_v1", alpha=0), ValueError,
         "alpha (width multiplier) must be > 0", "received 0"),
    case("mobilenet-alpha-str", lambda: build("mobilenet_v2", alpha="1"), TypeError,
         "alpha must be a number; received '1'"),
    case("mobilenet-depth-multiplier", lambda: build("mobilenet_v1", depth_multiplier=1.5), TypeError,
         "depth_multiplier must be an integer; received 1.5"),
    case("mobilenet-v3-minimalistic", lambda: build("mobilenet_v3_large", minimalistic="x"), TypeError,
         "minimalistic must be True or False"),
    case("efficientnet-drop-connect", lambda: build("efficientnet_b0", drop_connect_rate=1.0), ValueError,
         "drop_connect_rate must be in [0, 1); received 1.0"),
    case("efficientnet-drop-connect-negative", lambda: build("efficientnet_b0", drop_connect_rate=-0.2), ValueError,
         "drop_connect_rate must be in [0, 1); received -0.2"),
    case("efficientnet-dropout", lambda: build("efficientnet_b0", dropout=True), TypeError,
         "dropout must be a number in [0, 1); received True"),
    case("mobilenet-dropout-nan", lambda: build("mobilenet_v2", dropout=float("nan")), ValueError,
         "dropout must be in [0, 1); received nan"),
    case("googlenet-aux-dropout", lambda: build("googlenet", aux_dropout=1.0), ValueError,
         "aux_dropout must be in [0, 1); received 1.0"),
    case("googlenet-kernel", lambda: build("googlenet", kernel_5x5=4), ValueError,
         "kernel_5x5 must be one of 5, 3; received 4"),
    case("inception-aux-logits", lambda: build("inception_v3", aux_logits=1), TypeError,
         "aux_logits must be True or False; received 1"),
    case("inception-resnet-scale", lambda: build("inception_resnet_v2", residual_scale=(0.1,)), ValueError,
         "residual_scale must be a number or an (A, B, C) triple; received (0.1,)"),
    case("shufflenet-scale", lambda: build("shufflenet_v1_g3", scale=0.3), ValueError,
         "scale must be one of 0.5, 1.0, 1.5, 2.0; received 0.3"),
    case("shufflenet-grouped-conv", lambda: build("shufflenet_v1_g3", grouped_conv="fast"), ValueError,
         "grouped_conv must be one of 'native', 'split'; received 'fast'"),
    case("squeezenet-bypass", lambda: build("squeezenet1_0", bypass="full"), ValueError,
         "bypass must be one of None, 'simple', 'complex'; received 'full'"),
    case("nin-dropout", lambda: build("nin", dropout=1.5), ValueError, "dropout must be in [0, 1); received 1.5"),
]

FCN = [
    case("not-a-model", lambda: keras_cnn.to_fcn("vgg16"), TypeError, "model must be a keras.Model", "str"),
    case("headless", lambda: keras_cnn.to_fcn(build(include_top=False)), ValueError,
         "model 'lenet5' is already fully convolutional", "layer 'c5' (Conv2D)", "feature map of shape",
         "no Flatten or GlobalAveragePooling2D classifier head"),
    case("feature-map-output", lambda: keras_cnn.to_fcn(tiny("feature_map")), ValueError,
         "already fully convolutional", "layer 'relu' (ReLU)", "(None, 6, 6, 2)"),
    case("global-max-pooling", lambda: keras_cnn.to_fcn(build(include_top=False, pooling="max")), ValueError,
         "cannot convert layer 'max_pool' (GlobalMaxPooling2D)"),
    case("reshape-head", lambda: keras_cnn.to_fcn(tiny("reshape")), ValueError,
         "cannot convert layer 'odd_reshape' (Reshape)"),
    case("keepdims", lambda: keras_cnn.to_fcn(tiny("keepdims")), ValueError,
         "layer 'gap': GlobalAveragePooling2D(keepdims=True) is not supported"),
    case("two-outputs", lambda: keras_cnn.to_fcn(tiny("two_outputs")), ValueError, "one input and one output",
         "2 output(s)"),
]

EVALUATION = [
    case("dense-model", lambda: evaluation.dense_predict("lenet5", X), TypeError, "model must be a keras.Model"),
    case("dense-reduce", lambda: evaluation.dense_predict(lenet(), X, reduce="median"), ValueError,
         "reduce must be one of 'mean', 'max'; received 'median'"),
    case("dense-scales-small", lambda: evaluation.dense_predict(lenet(), X, scales=(16,)), ValueError,
         "scales must be >= the model's input size 32; received (16,)"),
    case("dense-scales-empty", lambda: evaluation.dense_predict(lenet(), X, scales=()), ValueError,
         "scales must name at least one shorter-side size"),
    case("dense-scales-float", lambda: evaluation.dense_predict(lenet(), X, scales=32.5), TypeError,
         "scales must be a shorter-side size or a sequence of them", "32.5"),
    case("dense-scales-str", lambda: evaluation.dense_and_crop_predict(lenet(), X, scales="256"), TypeError,
         "scales must be", "'256'"),
    case("dense-flip", lambda: evaluation.dense_predict(lenet(), X, scales=32, flip="yes"), TypeError,
         "flip must be True or False"),
    case("dense-jit-compile", lambda: evaluation.dense_predict(lenet(), X, scales=32, jit_compile=1), TypeError,
         "jit_compile must be True or False", "received 1"),
    case("dense-batch-size", lambda: evaluation.dense_predict(lenet(), X, scales=32, batch_size=0), ValueError,
         "batch_size must be >= 1; received 0"),
    case("dense-images-3d", lambda: evaluation.dense_predict(lenet(), X[0], scales=32), ValueError,
         "images must be an (N, H, W, C) array", "(32, 32, 1)"),
    case("dense-images-empty", lambda: evaluation.dense_predict(lenet(), X[:0], scales=32), ValueError,
         "images must be an (N, H, W, C) array with N >= 1", "(0, 32, 32, 1)"),
    case("dense-images-channels", lambda: evaluation.dense_predict(lenet(), np.zeros((1, 32, 32, 3)), scales=32),
         ValueError, "images must have 1 channel(s)", "(32, 32, 3)"),
    case("crop-crops", lambda: evaluation.multi_crop_predict(lenet(), X, crops=7), ValueError,
         "crops must be one of 1, 5, 10; received 7"),
    case("crop-grid", lambda: evaluation.multi_crop_predict(lenet(), X, grid=0), ValueError,
         "grid must be >= 1; received 0"),
    case("crop-size-fixed-model", lambda: evaluation.multi_crop_predict(lenet(), X, crop_size=40), ValueError,
         "crop_size must be the model's fixed input size 32", "received 40"),
    case("crop-size-any-size-model", lambda: evaluation.multi_crop_predict(tiny("any_size"), X), ValueError,
         "crop_size is required", "received None"),
    case("crop-resize", lambda: evaluation.multi_crop_predict(lenet(), X, resize=0), ValueError,
         "resize must be >= 1; received 0"),
    case("crop-batch-size", lambda: evaluation.multi_crop_predict(lenet(), X, batch_size=0), ValueError,
         "batch_size must be >= 1; received 0"),
    case("crop-images-none", lambda: evaluation.multi_crop_predict(lenet(), None), ValueError,
         "images must be", "received NoneType"),
    case("crop-images-mixed-channels", lambda: evaluation.multi_crop_predict(lenet(), [X[0], np.zeros((32, 32, 2))]),
         ValueError, "images must have 1 channel(s)", "(32, 32, 2)"),
    case("crop-images-text", lambda: evaluation.multi_crop_predict(lenet(), np.full((1, 32, 32, 1), "a")),
         TypeError, "images must hold numbers"),
    case("scale-scales", lambda: evaluation.multi_scale_predict(lenet(), X, scales=(16, 32)), ValueError,
         "scales must be >= the model's input size 32"),
    case("scale-crops", lambda: evaluation.multi_scale_predict(lenet(), X, scales=(32,), crops=3), ValueError,
         "crops must be one of 1, 5, 10; received 3"),
]

METRICS = [
    case("lengths", lambda: m.pr_auc([0, 1, 1], [0.2, 0.4]), ValueError,
         "y_true and y_score must have the same number of samples; received 3 and 2"),
    case("empty", lambda: m.roc_auc([], []), ValueError, "must not be empty"),
    case("nan-score", lambda: m.pr_auc([0, 1], [0.2, np.nan]), ValueError, "y_score must be finite; received 1 NaN"),
    case("inf-score", lambda: m.f1_score(Y3, np.where(S3 > 0.5, np.inf, S3), task="multiclass"), ValueError,
         "y_score must be finite"),
    case("nan-label", lambda: m.roc_auc([0, np.nan], [0.1, 0.2]), ValueError, "y_true must contain only 0 and 1",
         "nan"),
    case("nan-class", lambda: m.accuracy([0.0, np.nan], [[0.1, 0.9], [0.2, 0.8]], task="multiclass"), ValueError,
         "y_true must hold integer class indices in [0, 2)", "nan"),
    case("class-too-large", lambda: m.roc_auc(np.where(Y3 == 0, 3, Y3), S3, task="multiclass"), ValueError,
         "y_true must hold integer class indices in [0, 3)", "values [3]"),
    case("class-negative", lambda: m.f1_score(Y3 - 1, S3, task="multiclass"), ValueError,
         "integer class indices", "values [-1]"),
    case("class-fraction", lambda: m.pr_auc(Y3 + 0.5, S3, task="multiclass"), ValueError, "integer class indices"),
    case("binary-label", lambda: m.pr_auc([0, 2, 1], [0.1, 0.2, 0.3]), ValueError,
         "y_true must contain only 0 and 1; received values [2]"),
    case("multilabel-label", lambda: m.f1_score(ONE_HOT3 * 2, S3, task="multilabel"), ValueError,
         "y_true must contain only 0 and 1"),
    case("task", lambda: m.pr_auc([0, 1], [0.1, 0.9], task="foo"), ValueError,
         "task must be one of 'binary', 'multiclass', 'multilabel'; received 'foo'"),
    case("average", lambda: m.roc_auc(Y3, S3, task="multiclass", average="weighted"), ValueError,
         "average must be one of 'macro', 'micro', None; received 'weighted'"),
    case("curve-average", lambda: m.roc_curve(Y3, S3, task="multiclass", average="macro"), ValueError,
         "average must be one of 'micro', None; received 'macro'"),
    case("threshold", lambda: m.f1_score([0, 1], [0.1, 0.9], threshold=np.nan), ValueError,
         "threshold must be a finite number", "nan"),
    case("beta", lambda: m.fbeta_score([0, 1], [0.1, 0.9], beta=0), ValueError, "beta must be a finite number > 0",
         "received 0"),
    case("binary-shape", lambda: m.pr_auc(Y3, S3), ValueError, "task='binary' needs y_true and y_score of shape"),
    case("one-class", lambda: m.pr_auc(Y3, S3[:, :1], task="multiclass"), ValueError, "n_classes >= 2", "(20, 1)"),
    case("multilabel-shape", lambda: m.pr_auc(ONE_HOT3[:, :2], S3, task="multilabel"), ValueError,
         "needs y_true of shape (20, 3)", "received (20, 2)"),
    case("text-score", lambda: m.pr_auc([0, 1], ["a", "b"]), ValueError, "y_score must be numeric"),
    case("summary-class-names", lambda: m.classification_summary(Y3, S3, task="multiclass", class_names=["a"]),
         ValueError, "class_names must have one name per class (3); received 1"),
    case("summary-per-class", lambda: m.classification_summary(Y3, S3, task="multiclass", per_class="yes"),
         TypeError, "per_class must be True or False; received 'yes'"),
]


def callback(**kwargs):
    return ClassificationMetrics(**{"validation_data": (X, np.zeros(1)), **kwargs})


CALLBACK = [
    case("task", lambda: callback(task="foo"), ValueError,
         "task must be one of 'binary', 'multiclass', 'multilabel'; received 'foo'"),
    case("every-n-epochs", lambda: callback(every_n_epochs=0), ValueError, "every_n_epochs must be >= 1; received 0"),
    case("every-n-epochs-str", lambda: callback(every_n_epochs="2"), TypeError,
         "every_n_epochs must be an integer; received '2'"),
    case("plot-every-n-epochs", lambda: callback(plot_every_n_epochs=1.5), TypeError,
         "plot_every_n_epochs must be an integer; received 1.5"),
    case("batch-size", lambda: callback(batch_size=0), ValueError, "batch_size must be >= 1; received 0"),
    case("per-class", lambda: callback(per_class="yes"), TypeError, "per_class must be True or False"),
    case("from-logits", lambda: callback(from_logits="yes"), TypeError, "from_logits must be True or False"),
    case("logit-threshold", lambda: callback(from_logits=True, threshold=1.0), ValueError,
         "threshold must be in (0, 1) with from_logits=True; received 1.0"),
    case("prefix", lambda: callback(prefix=3), TypeError, "prefix must be a string; received 3"),
    case("binary-class-names", lambda: callback(task="binary", class_names=["a", "b", "c"]), ValueError,
         "class_names for task='binary' must be two names", "received 3"),
    case("class-names-str", lambda: callback(task="binary", class_names="ab"), TypeError,
         "class_names must be None or a list of names", "'ab'"),
    case("sample-weights", lambda: callback(validation_data=(X, np.zeros(1), np.ones(1))), ValueError,
         "validation_data must be (x, y)", "sample weights are not supported"),
    case("lengths", lambda: callback(validation_data=(X, np.zeros(3))), ValueError,
         "validation_data x and y must have the same number of samples; received 1 and 3"),
    case("one-shot", lambda: callback(validation_data=one_shot()), ValueError, "validation_data must be re-iterable",
         "generator"),
    case("array", lambda: callback(validation_data=X), ValueError, "validation_data must be (x, y)", "ndarray"),
]

EXPORT = [
    case("savedmodel-model", lambda: export.to_saved_model("lenet5", "sm"), TypeError,
         "model must be a keras.Model; received str"),
    case("savedmodel-two-outputs", lambda: export.to_saved_model(tiny("two_outputs"), "sm"), ValueError,
         "export needs one image input and one output", "has 1 and 2"),
    case("savedmodel-directory", lambda: export.to_saved_model(lenet(), None), TypeError,
         "directory must be a path", "None"),
    case("savedmodel-version", lambda: export.to_saved_model(lenet(), "sm", version=0), ValueError,
         "version must be >= 1; received 0"),
    case("savedmodel-version-str", lambda: export.to_saved_model(lenet(), "sm", version="1"), TypeError,
         "version must be an integer; received '1'"),
    case("savedmodel-overwrite", lambda: export.to_saved_model(lenet(), "sm", overwrite="yes"), TypeError,
         "overwrite must be True or False"),
    case("tflite-path", lambda: export.to_tflite(lenet(), None), TypeError, "path must be a path", "None"),
    case("tflite-quantization", lambda: export.to_tflite(lenet(), "m.tflite", quantization="int4"), ValueError,
         "quantization must be one of None, 'float16', 'dynamic', 'int8'; received 'int4'"),
    case("tflite-int8-data", lambda: export.to_tflite(lenet(), "m.tflite", quantization="int8"), ValueError,
         "quantization='int8' needs representative_data", "received None"),
    case("tflite-io-dtype", lambda: export.to_tflite(lenet(), "m.tflite", io_dtype="int16"), ValueError,
         "io_dtype must be one of 'float32', 'int8', 'uint8'; received 'int16'"),
    case("tflite-io-dtype-float", lambda: export.to_tflite(lenet(), "m.tflite", io_dtype="int8"), ValueError,
         "io_dtype='int8' needs quantization='int8'", "received quantization=None"),
    case("tflite-data-type", lambda: export.to_tflite(lenet(), "m.tflite", quantization="int8",
                                                      representative_data=[1, 2]), TypeError,
         "representative_data must be an image array or a tf.data.Dataset; received list"),
    case("tflite-data-shape", lambda: export.to_tflite(lenet(), "m.tflite", quantization="int8",
                                                       representative_data=np.zeros((2, 16, 16, 1))), ValueError,
         "representative_data must hold images of the model's input shape (32, 32, 1)", "(2, 16, 16, 1)"),
    case("tflite-dataset-shape", lambda: export.to_tflite(
        lenet(), "m.tflite", quantization="int8",
        representative_data=tf.data.Dataset.from_tensor_slices(np.zeros((2, 32, 32, 3), "float32"))), ValueError,
         "representative_data must hold images", "(32, 32, 3)"),
    case("tflite-verify-shape", lambda: export.to_tflite(lenet(), "m.tflite", verify_data=np.zeros((2, 16, 16, 1))),
         ValueError, "verify_data must hold images of the model's input shape (32, 32, 1)", "(2, 16, 16, 1)"),
    case("tflite-samples", lambda: export.to_tflite(lenet(), "m.tflite", quantization="int8", representative_data=X,
                                                    num_calibration_samples=0), ValueError,
         "num_calibration_samples must be >= 1; received 0"),
    case("tflite-per-channel", lambda: export.to_tflite(lenet(), "m.tflite", per_channel="no"), TypeError,
         "per_channel must be True or False; received 'no'"),
    case("tflite-class-names", lambda: export.to_tflite(lenet(), "m.tflite", class_names=["a"]), ValueError,
         "class_names must have one name per class (4, the model's outputs); received 1"),
    case("tflite-class-names-str", lambda: export.to_tflite(lenet(), "m.tflite", class_names="abcd"), TypeError,
         "class_names must be None or a list of names", "'abcd'"),
    case("tflite-preprocessing", lambda: export.to_tflite(lenet(), "m.tflite", preprocessing={"scale": object()}),
         TypeError, "preprocessing must be None or a JSON-serialisable dict", "received {'scale': <object"),
    case("onnx-model", lambda: export.to_onnx("lenet5", "m.onnx"), TypeError, "model must be a keras.Model"),
    case("onnx-path", lambda: export.to_onnx(lenet(), None), TypeError, "path must be a path", "None"),
    case("onnx-opset-low", lambda: export.to_onnx(lenet(), "m.onnx", opset=9), ValueError,
         "opset must be >= 13; received 9"),
    case("onnx-opset-high", lambda: export.to_onnx(lenet(), "m.onnx", opset=99), ValueError,
         "opset must be <= 18; received 99"),
    case("onnx-opset-str", lambda: export.to_onnx(lenet(), "m.onnx", opset="17"), TypeError,
         "opset must be an integer; received '17'"),
    case("onnx-verify-shape", lambda: export.to_onnx(lenet(), "m.onnx", verify_data=np.zeros((32, 32, 3))),
         ValueError, "verify_data must hold images", "(32, 32, 3)"),
]


def prefixed(prefix, rows):
    return [pytest.param(*row.values, id=f"{prefix}-{row.id}") for row in rows]


ROWS = (prefixed("build", BUILD) + prefixed("to_fcn", FCN) + prefixed("evaluation", EVALUATION)
        + prefixed("metrics", METRICS) + prefixed("callback", CALLBACK) + prefixed("export", EXPORT))


@pytest.mark.parametrize("call, error, fragments", ROWS)
def test_bad_argument_is_named_by_our_own_check(call, error, fragments, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the export rows' relative paths land here, and must not be written
    with pytest.raises(Exception) as excinfo:
        call()
    assert excinfo.type is error, f"{excinfo.type.__name__}: {excinfo.value}"
    message = str(excinfo.value)
    assert [f for f in fragments if f not in message] == [], message
    assert raised_by_us(excinfo.tb), traceback.format_tb(excinfo.tb)[-1]
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- the command line (keras-cnn and apps/*.py)

# (argv, fragments): argparse's own checks exit with code 2 and print usage; our checks exit with one line
# "keras-cnn <command>: error: ..." (cli.main turns a ValueError/TypeError into it).
FLAGS = [
    (["train", "--epochs", "0"], ["argument --epochs: must be an integer >= 1; received '0'"]),
    (["train", "--optimizer", "adagrad"], ["argument --optimizer: invalid choice: 'adagrad'", *recipes.OPTIMIZERS]),
    (["train", "--schedule", "linear"], ["argument --schedule: invalid choice: 'linear'", *recipes.SCHEDULES]),
    (["train", "--scale-jitter", "512,256"],
     ["argument --scale-jitter: must be MIN,MAX with integers 1 <= MIN <= MAX; received '512,256'"]),
    (["train", "--strategy", "ring"], ["argument --strategy: invalid choice: 'ring'", *distribute.STRATEGIES]),
    (["train", "--val-fraction", "1.5"], ["argument --val-fraction: must be a number in [0.01, 0.9]; received '1.5'"]),
    (["evaluate", "--model", "m.keras", "--mode", "ten-crop"],
     ["argument --mode: invalid choice: 'ten-crop'", *evaluate.MODES]),
    (["evaluate", "--model", "m.keras", "--crops", "7"], ["argument --crops: invalid choice: 7", "1, 5, 10"]),
    (["predict", "--model", "m.keras", "x.png", "--top-k", "0"], ["argument --top-k: must be an integer >= 1"]),
    (["export", "--model", "lenet5", "--opset", "9"], ["argument --opset: must be an integer >= 13; received '9'"]),
    (["export", "--model", "lenet5", "--from", "m.keras"], ["argument --from: not allowed with argument --model"]),
    (["frobnicate"], ["usage: keras-cnn COMMAND", "command must be one of train, evaluate", "received 'frobnicate'"]),
    (["train", "--data", "imagenet"],
     ["--data must be 'digits', 'folder:PATH', 'tfds:NAME[:SPLIT]', or multi-label", "received 'imagenet'"]),
    (["train", "--model", "lenet6"], ["argument --model: not a registered model name (keras-cnn list): 'lenet6'; "
                                      "closest: lenet5"]),
    (["train", "--option", "pool"], ["--option must be KEY=VALUE; received 'pool'"]),
    (["train", "--option", "wings=2", "--limit", "20"],
     ["--option wings=2: Unknown option(s) 'wings' for model 'lenet5'; its options are: activation, pool"]),
    (["train", "--option", "pool=median", "--option", "activation=relu"],
     ["--option pool=median, activation=relu: pool must be one of 'avg', 'max'; received 'median'"]),
    (["train", "--model", "inception_v3", "--option", "dropout=1.5"],
     ["--option dropout=1.5: dropout must be in [0, 1); received 1.5"]),
    (["train", "--image-size", "16"], ["--image-size must be at least 32 for model 'lenet5'", "received 16"]),
    (["train", "--monitor", "val_f1"],
     ["--monitor must be one of 'loss', 'accuracy', 'val_loss', 'val_accuracy', 'val_pr_auc_macro', "
      "'val_pr_auc_micro', 'val_roc_auc_macro', 'val_roc_auc_micro', 'val_f1_macro', 'val_f1_micro'; "
      "received 'val_f1'"]),
    (["train", "--model", "googlenet", "--option", "aux_logits=True", "--image-size", "32", "--monitor",
      "val_aux1_loss"], ["--monitor must be one of 'loss', 'predictions_loss', 'aux1_predictions_loss'",
                         "'val_aux2_predictions_loss', 'val_predictions_accuracy'", "'val_accuracy'",
                         "received 'val_aux1_loss'"]),
    (["train", "--loop", "custom", "--monitor", "val_predictions_accuracy"],
     ["--monitor must be one of 'loss', 'accuracy'", "received 'val_predictions_accuracy'"]),
    (["train", "--random-crop", "16"], ["--random-crop must be at least the input size 32; received 16"]),
    (["train", "--random-crop", "40", "--scale-jitter", "40,48"], ["--random-crop and --scale-jitter both choose"]),
    (["train", "--strategy", "multiworker"], ["--strategy multiworker needs the cluster in the TF_CONFIG"]),
    (["train", "--strategy", "multiworker", "--loop", "fit"], ["--loop fit cannot run under --strategy multiworker"]),
    (["train", "--val-fraction", "0.5", "--test-fraction", "0.5"], ["--val-fraction + --test-fraction must leave"]),
    (["predict", "--model", "missing.keras", "x.png"], ["IMAGE_OR_FOLDER must be existing files or folders"]),
    (["evaluate", "--model", "missing.onnx"], ["--model must be an existing .keras file, SavedModel folder",
                                               "received 'missing.onnx'"]),
    (["export", "--model", "lenet5", "--format", "pdf"], ["--format must list some of savedmodel, tflite, onnx",
                                                          "received 'pdf'"]),
    (["export", "--model", "lenet5", "--quantization", "int4"],
     ["--quantization must list some of none, float16, dynamic, int8; received 'int4'"]),
    (["export", "--model", "lenet5", "--format", "tflite", "--quantization", "none,fp8"],
     ["--quantization must list some of none, float16, dynamic, int8; received 'none,fp8'"]),
    (["export", "--model", "lenet5", "--quantization", "int8"], ["--quantization int8 needs --representative"]),
    (["export", "--model", "lenet5", "--quantization", "int8", "--representative", "imagenet"],
     ["--representative must be 'digits', 'folder:PATH', 'tfds:NAME[:SPLIT]', or multi", "received 'imagenet'"]),
    (["export", "--from", "missing.keras"], ["--from must be an existing .keras file", "received 'missing.keras'"]),
    (["export", "--model", "lenet5", "--classes", "10", "--format", "tflite", "--class-names", "a,b"],
     ["class_names must have one name per class (10", "received 2"]),
    (["export", "--model", "lenet5", "--format", "onnx", "--opset", "99"], ["opset must be <= 18; received 99"]),
]


@pytest.mark.parametrize("argv, fragments", [pytest.param(a, f, id=" ".join(a)) for a, f in FLAGS])
def test_bad_flags_exit_with_a_message_not_a_traceback(argv, fragments, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default --output folder, which must stay unwritten
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(SystemExit) as excinfo:
        cli.main(argv)
    code = excinfo.value.code
    if isinstance(code, int):  # argparse: usage and "error: argument ..." on stderr
        assert code == 2
        message = capsys.readouterr().err
    else:
        message = code
        assert "\n" not in message
        if excinfo.value.__cause__ is not None:
            assert message.startswith(f"keras-cnn {argv[0]}: error: ")
            assert raised_by_us(excinfo.value.__cause__.__traceback__)
    assert [f for f in fragments if f not in message] == [], message
    assert "Traceback" not in message
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv", [
    ["--option", "pool=median"], ["--model", "inception_v3", "--option", "dropout=1.5"],
    ["--image-size", "16"], ["--monitor", "val_f1"], ["--loop", "custom", "--monitor", "predictions_loss"],
    ["--model", "googlenet", "--option", "aux_logits=True", "--image-size", "32", "--monitor", "aux_loss"],
])
def test_train_reports_bad_options_sizes_and_monitors_before_loading_data(argv, tmp_path, monkeypatch):
    from keras_cnn.app import sources

    def load(*args, **kwargs):
        raise AssertionError("the data was loaded before the check")

    monkeypatch.setattr(sources, "load", load)
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["train", *argv, "--output", str(tmp_path)])
    assert isinstance(excinfo.value.__cause__, ValueError), excinfo.value.__cause__
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("app, argv, fragment", [
    ("train", ["--epochs", "0"], "argument --epochs: must be an integer >= 1"),
    ("evaluate", ["--model", "missing.onnx"], "keras-cnn evaluate: error: --model must be an existing .keras file"),
    ("predict", ["--model", "m.keras", "missing.png"], "keras-cnn predict: error: IMAGE_OR_FOLDER must be existing"),
    ("export", ["--model", "lenet5", "--format", "pdf"], "keras-cnn export: error: --format must list some of"),
])
def test_apps_wrappers_exit_with_the_message(app, argv, fragment, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [f"apps/{app}.py", *argv])
    monkeypatch.setattr(sys, "path", list(sys.path))  # the wrapper puts the repository first
    with pytest.raises(SystemExit) as excinfo:
        runpy.run_path(os.path.join(ROOT, "apps", f"{app}.py"), run_name="__main__")
    code = excinfo.value.code
    assert fragment in (capsys.readouterr().err if isinstance(code, int) else code)


def test_a_user_error_in_a_fresh_process_prints_one_line():
    result = subprocess.run([sys.executable, os.path.join("apps", "export.py"), "--model", "lenet5", "--format",
                             "pdf"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == ("keras-cnn export: error: --format must list some of "
                                                       "savedmodel, tflite, onnx; received 'pdf'.")
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- exports: all files or none, never replaced silently


def files_under(folder):
    return sorted(os.path.relpath(os.path.join(root, f), folder) for root, _, files in os.walk(folder) for f in files)


def fail_on_write(monkeypatch, number):
    """Make export's ``number``-th file write stop halfway, as on a full disk."""
    write, calls = _files._put, []

    def broken(path, data):
        calls.append(path)
        if len(calls) == number:
            write(path, data[:len(data) // 2])
            raise OSError(28, "No space left on device")
        write(path, data)

    monkeypatch.setattr(_files, "_put", broken)


def test_saved_model_and_tflite_conversion_failure_leaves_no_folder(tmp_path, monkeypatch):
    def broken(model, directory, record=None, labels=False):
        open(os.path.join(directory, "partial"), "w").close()
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_write_saved_model", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export.to_saved_model(lenet(), tmp_path / "serving" / "lenet5")
    with pytest.raises(RuntimeError, match="disk full"):
        export.to_tflite(lenet(), tmp_path / "out" / "m.tflite")
    assert os.listdir(tmp_path) == []


def test_saved_model_verification_failure_leaves_no_version(tmp_path, monkeypatch):
    (tmp_path / "lenet5" / "1").mkdir(parents=True)  # an earlier version stays as it is

    def disagree(*args):
        raise export.ExportVerificationError("differs from Keras")

    monkeypatch.setattr(export, "_compare", disagree)
    with pytest.raises(export.ExportVerificationError):
        export.to_saved_model(lenet(), tmp_path / "lenet5", version=2)
    assert os.listdir(tmp_path / "lenet5") == ["1"]


def test_tflite_labels_failure_keeps_the_old_files_and_adds_none(tmp_path, monkeypatch):
    old = {"m.tflite": b"old model", "m.tflite.json": b"{}", "m.labels.txt": b"old\n"}
    for name, content in old.items():
        (tmp_path / name).write_bytes(content)
    fail_on_write(monkeypatch, 3)  # the labels, after the model and its sidecar
    with pytest.raises(OSError, match="No space left"):
        export.to_tflite(lenet(), tmp_path / "m.tflite", class_names=list("abcd"), overwrite=True)
    assert {name: (tmp_path / name).read_bytes() for name in files_under(tmp_path)} == old
    monkeypatch.undo()
    export.to_tflite(lenet(), tmp_path / "m.tflite", class_names=list("abcd"), overwrite=True)
    assert files_under(tmp_path) == sorted(old) and (tmp_path / "m.labels.txt").read_text() == "a\nb\nc\nd\n"


def test_onnx_write_failure_leaves_no_file_or_folder(tmp_path, monkeypatch):
    fail_on_write(monkeypatch, 1)
    with pytest.raises(OSError, match="No space left"):
        export.to_onnx(lenet(), tmp_path / "new" / "m.onnx")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("existing, call", [
    ("m.tflite", lambda path: export.to_tflite(lenet(), path / "m.tflite")),
    ("m.tflite.json", lambda path: export.to_tflite(lenet(), path / "m.tflite")),
    ("m.labels.txt", lambda path: export.to_tflite(lenet(), path / "m.tflite", class_names=list("abcd"))),
    ("m.onnx", lambda path: export.to_onnx(lenet(), path / "m.onnx")),
    ("sm/1/saved_model.pb", lambda path: export.to_saved_model(lenet(), path / "sm")),
])
def test_an_existing_export_is_replaced_only_with_overwrite(existing, call, tmp_path):
    target = tmp_path / existing
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        call(tmp_path)
    assert files_under(tmp_path) == [existing] and target.read_bytes() == b"old"


def test_saved_model_overwrite_replaces_one_version_only(tmp_path):
    for version in ("3", "4"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "old").write_bytes(b"old")
    result = export.to_saved_model(lenet(), tmp_path, version=3, overwrite=True)
    assert result.path == str(tmp_path / "3") and os.path.isfile(tmp_path / "3" / "saved_model.pb")
    assert not (tmp_path / "3" / "old").exists() and (tmp_path / "4" / "old").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["3", "4"]  # no staging folder left
