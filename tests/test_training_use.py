"""Training as practitioners use it (#19): BatchNorm recalibration, metrics on models with auxiliary heads, and a
deployable .keras without the optimizer."""

import json
import zipfile

import keras
import numpy as np
import pytest

import keras_cnn
from keras_cnn import data, metrics
from keras_cnn.batch_norm import batch_norm_layers
from keras_cnn.callbacks import ClassificationMetrics

RESNET = ["--model", "resnet20", "--limit", "64", "--epochs", "1", "--batch-size", "32", "--learning-rate", "0.02",
          "--final", "last"]


def _quick_fit(model, images, labels, rate, epochs=1, batch_size=32):
    model.compile(keras.optimizers.Adam(rate), "sparse_categorical_crossentropy", jit_compile=False)
    model.fit(images, labels, epochs=epochs, batch_size=batch_size, verbose=0)


# ------------------------------------------------------------------ recalibrate_batch_norm

def test_recalibration_is_the_exact_population_mean_and_variance_over_uneven_batches():
    images = np.random.default_rng(0).normal(2.0, 3.0, (10, 4, 4, 2)).astype("float32")
    inputs = keras.Input((4, 4, 2))
    bn = keras.layers.BatchNormalization(momentum=0.9)
    model = keras.Model(inputs, bn(inputs))
    bn.trainable = False  # a frozen BN layer is recalibrated too, and stays frozen
    summary = keras_cnn.recalibrate_batch_norm(model, images, batch_size=4)  # batches of 4, 4 and 2
    assert summary == {"layers": 1, "images": 10, "batches": 3}
    np.testing.assert_allclose(bn.moving_mean.numpy(), images.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), images.var(axis=(0, 1, 2)), rtol=1e-5)
    assert bn.momentum == 0.9 and not bn.trainable and "call" not in vars(bn)


def test_recalibration_makes_inference_equal_the_population_statistics_pass_in_nested_models():
    """resnet20 fit a few steps at a high rate (moving averages lag): afterwards its inference outputs equal the
    forward pass that normalises with the statistics of the whole set; the model may sit inside another."""
    images, labels = data.digits(image_size=(32, 32), channels=3)["train"]
    images, labels = images[:64], labels[:64]
    keras.utils.set_random_seed(0)
    inner = keras_cnn.build("resnet20", input_shape=(32, 32, 3), classes=10)
    outer = keras.Sequential([keras.Input((32, 32, 3)), inner])
    _quick_fit(outer, images, labels, rate=0.02)
    population = outer(images, training=True).numpy()  # BN normalises with the 64 images' own statistics
    assert np.abs(outer.predict(images, verbose=0) - population).max() > 0.1  # stale
    summary = keras_cnn.recalibrate_batch_norm(outer, images, batch_size=64)
    assert summary == {"layers": len(batch_norm_layers(inner)), "images": 64, "batches": 1} and summary["layers"] == 19
    np.testing.assert_allclose(outer.predict(images, verbose=0), population, atol=2e-5)


def test_recalibration_reads_datasets_of_images_and_labels_and_stops_after_steps():
    import tensorflow as tf

    model = keras_cnn.build("resnet20", input_shape=(32, 32, 3), classes=3)
    images = np.random.default_rng(1).uniform(0, 1, (40, 32, 32, 3)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(40, "int32"))).batch(8)
    assert keras_cnn.recalibrate_batch_norm(model, dataset, steps=3) == {"layers": 19, "images": 24, "batches": 3}
    with pytest.raises(ValueError, match="steps"):
        keras_cnn.recalibrate_batch_norm(model, dataset, steps=0)
    with pytest.raises(ValueError, match="batch_size"):
        keras_cnn.recalibrate_batch_norm(model, dataset, batch_size=8)
    with pytest.raises(ValueError, match="no images"):
        keras_cnn.recalibrate_batch_norm(model, dataset.take(0))
    with pytest.raises(TypeError, match="keras.Model"):
        keras_cnn.recalibrate_batch_norm("resnet20", images)


def test_recalibration_leaves_dropout_off():
    """Only the BN layers switch to batch statistics: a dropout after them would otherwise change what follows."""
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Dropout(0.9, seed=0)(inputs)
    bn = keras.layers.BatchNormalization()
    model = keras.Model(inputs, bn(x))
    images = np.random.default_rng(2).normal(1.0, 2.0, (16, 4, 4, 2)).astype("float32")
    keras_cnn.recalibrate_batch_norm(model, images)
    np.testing.assert_allclose(bn.moving_mean.numpy(), images.mean(axis=(0, 1, 2)), rtol=1e-5)


# ------------------------------------------------------------------ keras-cnn train

def _train(tmp_path, *extra):
    from keras_cnn.app import train

    return train.main([*RESNET, "--output", str(tmp_path), *extra])


@pytest.mark.filterwarnings("ignore::keras_cnn.metrics.UndefinedMetricWarning")
def test_train_says_when_bn_statistics_are_stale_and_recalibrate_bn_fixes_them(tmp_path, capsys):
    stale = _train(tmp_path / "plain")["batch_norm"]
    printed = capsys.readouterr().out
    assert stale["stale"] and stale["recalibrated"] is None and "rerun with --recalibrate-bn" in printed
    fixed = _train(tmp_path / "fixed", "--recalibrate-bn")["batch_norm"]
    printed = capsys.readouterr().out
    assert fixed["recalibrated"] == {"layers": 19, "images": 64, "batches": 2}
    assert "recalibrated 19 layers on 64 training images" in printed and "rerun with" not in printed
    # the same training (same seed), then recalibrated: inference mode agrees with the batch statistics
    gap = abs(fixed["inference_loss"] - fixed["batch_statistics_loss"])
    assert not fixed["stale"] and gap < abs(stale["inference_loss"] - stale["batch_statistics_loss"]) / 10


def test_recalibrate_bn_needs_batch_norm(tmp_path):
    from keras_cnn.app import train

    with pytest.raises(ValueError, match="--recalibrate-bn.*no BatchNormalization layer"):
        train.main(["--model", "lenet5", "--epochs", "1", "--recalibrate-bn", "--output", str(tmp_path)])


@pytest.mark.filterwarnings("ignore::keras_cnn.metrics.UndefinedMetricWarning")
def test_deployable_keras_file_has_no_optimizer_and_reloads_with_equal_outputs(tmp_path, capsys):
    from keras_cnn.app import train

    summary = train.main(["--model", "lenet5", "--epochs", "2", "--limit", "64", "--output", str(tmp_path)])
    printed = capsys.readouterr().out
    # epochs numbered as Keras prints them ("Epoch 1/2"), the JSON keeps Keras's 0-based indices
    assert "Epoch 1/2" in printed and "epochs      2 (1..2)" in printed
    assert f"best epoch  {summary['best_epoch'] + 1}: val_accuracy" in printed and summary["epochs"] == [0, 1]
    assert summary["plot"] == str(tmp_path / "lenet5_train" / "training_curves.png")
    assert (tmp_path / "lenet5_train" / "training_curves.png").stat().st_size > 10_000
    path = tmp_path / "lenet5.keras"
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        weights = archive.read("model.weights.h5")
    assert not config.get("compile_config") and b"optimizer" not in weights
    model = keras.saving.load_model(path)
    assert getattr(model, "optimizer", None) is None and isinstance(model, keras_cnn.CNNModel)
    trained = keras_cnn.build(**keras_cnn.model_config(model))  # the best epoch's weights, as saved
    trained.load_weights(tmp_path / "lenet5_train" / "best.weights.h5")
    images = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 1)).astype("float32")
    np.testing.assert_array_equal(model.predict(images, verbose=0), trained.predict(images, verbose=0))


def test_history_plot_draws_loss_and_accuracy_per_epoch_from_1(tmp_path):
    from matplotlib.figure import Figure

    from keras_cnn import _plots

    saved = []
    original = Figure.savefig
    Figure.savefig = lambda fig, path, **kw: saved.append([ax.lines for ax in fig.axes]) or original(fig, path, **kw)
    try:
        path = _plots.save_history_plot({"epoch": [0, 1, 2], "loss": [3, 2, 1], "val_loss": [3, 2.5, 2],
                                         "accuracy": [.1, .5, .9], "learning_rate": [1, 1, 1]}, tmp_path / "h.png")
    finally:
        Figure.savefig = original
    (loss, val_loss), (accuracy,) = saved[0]
    assert list(loss.get_xdata()) == [1, 2, 3] and list(accuracy.get_ydata()) == [.1, .5, .9]
    assert path == tmp_path / "h.png" and path.stat().st_size > 0
    assert _plots.save_history_plot({"learning_rate": [1]}, tmp_path / "none.png") is None


# ------------------------------------------------------------------ ClassificationMetrics with auxiliary heads

def _googlenet():
    keras.utils.set_random_seed(0)
    model = keras_cnn.build("googlenet", input_shape=(32, 32, 3), classes=3, aux_logits=True)
    model.compile("sgd", ["sparse_categorical_crossentropy"] * 3)
    return model


@pytest.mark.filterwarnings("ignore::keras_cnn.metrics.UndefinedMetricWarning")
def test_classification_metrics_scores_the_main_output_of_a_model_with_auxiliary_heads():
    import tensorflow as tf

    model = _googlenet()
    rng = np.random.default_rng(0)
    images, labels = rng.uniform(0, 1, (12, 32, 32, 3)).astype("float32"), np.arange(12) % 3
    targets = (labels,) * 3
    dataset = tf.data.Dataset.from_tensor_slices((images, targets)).batch(6)
    main, aux = ClassificationMetrics(dataset), ClassificationMetrics((images, labels), output="aux1_predictions")
    history = model.fit(dataset, epochs=1, verbose=0, callbacks=[main, aux], shuffle=False)
    assert "val_f1_macro" in history.history
    expected = metrics.f1_score(labels, model.predict(images, verbose=0)[0], task="multiclass",
                                          average="macro")
    assert main.compute()["val_f1_macro"] == pytest.approx(expected)
    aux_scores = model.predict(images, verbose=0)[1]
    assert aux.compute()["val_roc_auc_macro"] == pytest.approx(
        metrics.roc_auc(labels, aux_scores, task="multiclass", average="macro"))
    wrong = ClassificationMetrics((images, labels), output="logits")
    wrong.set_model(model)
    with pytest.raises(ValueError, match="output must be one of.*'predictions'.*received 'logits'"):
        wrong.compute()
