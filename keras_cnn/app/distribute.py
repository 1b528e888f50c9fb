"""``--strategy default | mirrored | multiworker`` and the training loop used under MultiWorkerMirroredStrategy.

``mirrored`` replicates the model on the local GPUs or, without any, on ``devices`` logical CPU devices, and
trains with ``model.fit``. ``multiworker`` reads the cluster from ``TF_CONFIG``. Keras 3.15's ``model.fit`` cannot
train under MultiWorkerMirroredStrategy (keras-team/keras#20585): ``_maybe_symbolic_build`` reduces the first
distributed batch with ``strategy.reduce``, which fails across workers, and ``reduce_per_replica`` then reduces
the scalar logs along an axis 0 they do not have. :func:`custom_fit` trains the same model with the same
optimizer and loss by a step under ``strategy.run``: each replica's loss is its summed per-example loss over the
global batch, the optimizer all-reduces (sums) the gradients, and the logs are sums reduced across workers. Epoch
callbacks see a plain copy of the model (``twin``), refreshed every epoch, so they predict and save without
collective operations; only the chief (task 0) writes files.
"""

import hashlib
import json
import os

import numpy as np

STRATEGIES = ("default", "mirrored", "multiworker")


def create(name, devices=2):
    """The ``tf.distribute`` strategy; call it before any other TensorFlow work (devices are fixed then)."""
    import tensorflow as tf

    from keras_cnn import _validate

    _validate.check_choice("--strategy", name, STRATEGIES)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(_mirrored_devices(_validate.check_int("--devices", devices,
                                                                                    minimum=1)))
    if "TF_CONFIG" not in os.environ:
        raise ValueError("--strategy multiworker needs the cluster in the TF_CONFIG environment variable, e.g. "
                         '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", '
                         '"index": 0}}; received no TF_CONFIG.')
    return tf.distribute.MultiWorkerMirroredStrategy()


def _mirrored_devices(count):
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return [f"/gpu:{i}" for i in range(min(count, len(gpus)))]
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:  # TensorFlow already started: keep what it has if it is enough
        if len(tf.config.list_logical_devices("CPU")) < count:
            raise ValueError(f"--strategy mirrored --devices {count} must split the CPU into logical devices "
                             "before TensorFlow starts; run the command in a fresh process.") from error
    return [d.name for d in tf.config.list_logical_devices("CPU")[:count]]


def task():
    """``(index, is_chief)`` of this worker from TF_CONFIG; ``(0, True)`` without a cluster."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    kind, index = config.get("task", {}).get("type", "worker"), int(config.get("task", {}).get("index", 0))
    has_chief = "chief" in config.get("cluster", {})
    return index, kind == "chief" or (not has_chief and kind == "worker" and index == 0)


def fingerprint(model):
    """A short hash of the weights: equal on every worker after synchronous training."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


def custom_fit(model, optimizer, *, losses, weights, train, steps, global_batch, epochs, strategy, callbacks,
               validation=None, verbose=1, jit_compile=False):
    """Train ``model`` (built under ``strategy.scope()``) on the endless ``train`` dataset of global batches.

    ``losses``/``weights``: one loss object (``reduction=None``: per-example values) and weight per output.
    ``callbacks`` run on a plain twin of the model holding the trained weights after every epoch;
    ``validation`` (batches of ``(x, y)``) adds ``val_loss`` and ``val_accuracy`` of the main output.
    Returns the twin, whose ``history`` is the History.
    """
    import keras

    from keras_cnn.model import clone

    twin = clone(model)
    callback_list = keras.callbacks.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                                                 verbose=verbose, epochs=epochs, steps=steps, model=twin)
    step = _step(model, optimizer, losses, weights, strategy, global_batch, jit_compile)
    iterator = iter(strategy.experimental_distribute_dataset(train))
    twin.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(epochs):
        callback_list.on_epoch_begin(epoch)
        totals = np.zeros(3)
        for batch in range(steps):
            callback_list.on_train_batch_begin(batch)
            totals += [float(v) for v in step(next(iterator))]
            logs = {"loss": totals[0] / totals[2], "accuracy": totals[1] / totals[2]}
            callback_list.on_train_batch_end(batch, logs)
        twin.set_weights(model.get_weights())
        if validation is not None:
            logs.update(_evaluate(twin, losses[0], validation))
        callback_list.on_epoch_end(epoch, logs)
        if _any_worker(strategy, twin.stop_training):
            break
    callback_list.on_train_end(logs)
    return twin


def _step(model, optimizer, losses, weights, strategy, global_batch, jit_compile):
    import tensorflow as tf

    def replica_step(images, labels):
        targets = list(labels) if isinstance(labels, (tuple, list)) else [labels]  # one per output
        with tf.GradientTape() as tape:
            outputs = model(images, training=True)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            per_example = tf.add_n([w * _per_example(loss, target, out) for loss, w, target, out
                                    in zip(losses, weights, targets, outputs)])
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
        gradients = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        correct = tf.cast(tf.equal(tf.argmax(outputs[0], -1), _class_index(targets[0])), tf.float32)
        return tf.reduce_sum(per_example), tf.reduce_sum(correct), tf.cast(tf.size(correct), tf.float32)

    replica_step = tf.function(replica_step, jit_compile=jit_compile) if jit_compile else replica_step

    @tf.function
    def step(batch):
        results = strategy.run(replica_step, args=batch)
        return [strategy.reduce("SUM", value, axis=None) for value in results]

    return step


def _per_example(loss, labels, outputs):
    import tensorflow as tf

    return loss(labels, tf.cast(outputs, tf.float32))  # float32 loss under mixed precision


def _class_index(labels):
    import tensorflow as tf

    return tf.argmax(labels, -1) if labels.shape.rank > 1 else tf.cast(labels, tf.int64)


def _evaluate(model, loss, dataset):
    """Main-output ``val_loss`` and ``val_accuracy`` of the plain twin (no collectives: every worker alike)."""
    from keras_cnn.model import inference_model

    main = inference_model(model)
    total = correct = count = 0.0
    for images, labels in dataset:
        labels = labels[0] if isinstance(labels, tuple) else labels
        probabilities = main(images, training=False)
        total += float(np.sum(_per_example(loss, labels, probabilities)))
        correct += float(np.sum(np.argmax(probabilities, -1) == np.asarray(_class_index(labels))))
        count += len(probabilities)
    return {"val_loss": total / count, "val_accuracy": correct / count}


def _any_worker(strategy, flag):
    """Stop when any worker's callbacks asked to (all must leave the loop together or the others would wait)."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return bool(flag)
    return float(_sum_across(strategy, tf.constant(float(bool(flag))))) > 0


def _sum_across(strategy, value):
    import tensorflow as tf

    @tf.function
    def reduce(value):  # a collective all-reduce; eager strategy.reduce fails across workers
        return strategy.reduce("SUM", strategy.run(tf.identity, args=(value,)), axis=None)

    return reduce(value)
