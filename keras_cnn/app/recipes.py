"""The papers' training recipes as objects: optimizer, learning-rate schedule, loss (label smoothing, auxiliary
heads), precision and XLA.

Schedules count optimizer steps, so they are given epochs and the steps per epoch: ``step`` multiplies the rate
by ``step_factor`` every ``step_epochs`` (AlexNet/VGG divide by 10), ``exponential`` by ``decay_rate`` every
``decay_epochs`` (Inception v3: 0.94 every 2), ``cosine`` decays to 0 over the run. ``weight_decay`` is Keras's
decoupled decay (``w -= lr * wd * w`` each step), which for SGD equals the papers' L2 term of wd / 2.
"""

import dataclasses

from keras_cnn import _validate

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "exponential", "cosine")
MAIN_OUTPUT = "predictions"


@dataclasses.dataclass(frozen=True)
class Schedule:
    name: str = "cosine"
    learning_rate: float = 3e-3
    step_epochs: int = 30
    step_factor: float = 0.1
    decay_epochs: float = 2.0
    decay_rate: float = 0.94


def learning_rate(schedule, steps_per_epoch, epochs):
    """A float or a ``keras.optimizers.schedules`` object over ``epochs * steps_per_epoch`` steps."""
    import keras

    _validate.check_choice("--schedule", schedule.name, SCHEDULES)
    rate = schedule.learning_rate
    if schedule.name == "constant":
        return rate
    if schedule.name == "step":
        every = schedule.step_epochs * steps_per_epoch  # the rate holds while step <= boundary: drop at k*every
        boundaries = [b - 1 for b in range(every, epochs * steps_per_epoch, every)]
        values = [rate * schedule.step_factor ** i for i in range(len(boundaries) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values) if boundaries else rate
    if schedule.name == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            rate, max(1, round(schedule.decay_epochs * steps_per_epoch)), schedule.decay_rate, staircase=True)
    return keras.optimizers.schedules.CosineDecay(rate, max(1, epochs * steps_per_epoch))


def optimizer(name, rate, *, momentum=0.9, weight_decay=0.0, nesterov=False):
    """SGD (with momentum, optionally Nesterov), Adam, AdamW or RMSprop; ``weight_decay`` 0 means none."""
    import keras

    _validate.check_choice("--optimizer", name, OPTIMIZERS)
    decay = weight_decay or None
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=momentum, nesterov=nesterov, weight_decay=decay)
    if name == "adam":
        return keras.optimizers.Adam(rate, weight_decay=decay)
    if name == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=weight_decay or 0.004)
    return keras.optimizers.RMSprop(rate, momentum=momentum, weight_decay=decay)


def loss_weights(model, aux_weight):
    """1 for the main output, ``aux_weight`` for every auxiliary classifier (GoogLeNet's 0.3)."""
    return {name: 1.0 if name == MAIN_OUTPUT else aux_weight for name in model.output_names}


def loss(label_smoothing, reduction="sum_over_batch_size", multilabel=False):
    """Cross-entropy on integer labels, or on one-hot labels when smoothing (Inception v3: 0.1); with
    ``multilabel``, binary cross-entropy on multi-hot rows (each class an independent sigmoid)."""
    import keras

    if multilabel:
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing, reduction=reduction)
    if label_smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, reduction=reduction)
    return keras.losses.SparseCategoricalCrossentropy(reduction=reduction)


def accuracy(label_smoothing, multilabel=False):
    """Top-1 accuracy, or for ``multilabel`` the share of (image, class) decisions right at 0.5 (Keras's
    ``BinaryAccuracy``; the per-class thresholds come after training)."""
    import keras

    if multilabel:
        return keras.metrics.BinaryAccuracy(name="accuracy")
    if label_smoothing:
        return keras.metrics.CategoricalAccuracy(name="accuracy")
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")


def targets(model, classes, label_smoothing, multilabel=False):
    """``fn(labels) -> targets``: one-hot when smoothing (multi-hot rows pass as they are), repeated once per
    output for auxiliary heads."""
    import tensorflow as tf

    count = len(model.outputs)

    def fn(labels):
        target = tf.one_hot(labels, classes) if label_smoothing and not multilabel else labels
        return target if count == 1 else (target,) * count

    return fn


def compile_kwargs(model, label_smoothing, aux_weight, multilabel=False):
    """``loss``, ``loss_weights`` and ``metrics`` for ``model.compile`` (per output when there are several)."""
    if len(model.outputs) == 1:
        return {"loss": loss(label_smoothing, multilabel=multilabel),
                "metrics": [accuracy(label_smoothing, multilabel)]}
    names = model.output_names
    return {"loss": {n: loss(label_smoothing, multilabel=multilabel) for n in names},
            "loss_weights": loss_weights(model, aux_weight),
            "metrics": {MAIN_OUTPUT: [accuracy(label_smoothing, multilabel)]}}


def precision_policy(mixed):
    """Keras dtype policy: mixed float16 on a GPU, mixed bfloat16 on CPUs (no fast float16 there)."""
    if not mixed:
        return "float32"
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
