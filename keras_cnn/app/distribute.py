"""``--strategy default | mirrored | multiworker`` and the training loop used under MultiWorkerMirroredStrategy.

``mirrored`` replicates the model on the local GPUs or, without any, on ``devices`` logical CPU devices, and
trains with ``model.fit``. ``multiworker`` reads the cluster from ``TF_CONFIG``. Keras 3.15's ``model.fit`` cannot
train under MultiWorkerMirroredStrategy (keras-team/keras#20585): ``_maybe_symbolic_build`` reduces the first
distributed batch with ``strategy.reduce``, which fails across workers, and ``reduce_per_replica`` then reduces
the scalar logs along an axis 0 they do not have. :func:`custom_fit` trains the same model with the same
optimizer and loss by a step under ``strategy.run``: each replica's loss is its summed per-example loss over the
global batch, the optimizer all-reduces (sums) the gradients, and the logs are sums reduced across workers. Epoch
callbacks see a plain copy of the model (``twin``), refreshed every epoch, so they predict and save without
collective operations; only the chief (task 0) writes files. The loop backs up its whole state at every epoch's
end and every ``--backup-steps`` steps (:mod:`keras_cnn.app.loop_backup`); the same command run again on every
worker resumes from the chief's latest backup.
"""

import contextlib
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
               validation=None, verbose=1, jit_compile=False, multilabel=False, backup_dir=None, backup_steps=0,
               resume=True):
    """Train ``model`` (built under ``strategy.scope()``) on the endless ``train`` dataset of global batches.

    ``losses``/``weights``: one loss object (``reduction=None``: per-example values) and weight per output.
    ``callbacks`` run on a plain twin of the model holding the trained weights after every epoch;
    ``validation`` (batches of ``(x, y)``) adds ``val_loss`` and ``val_accuracy`` of the main output.
    ``multilabel``: the accuracies are per-label at threshold 0.5 (sigmoid scores, multi-hot labels).
    ``backup_dir``: back up there at every epoch's end and every ``backup_steps`` steps (``loop_backup``), resume
    from its latest checkpoint (unless ``resume`` is False), delete it when training ends; None: no backup.
    Returns the twin, whose ``history`` is the History.
    """
    import keras

    from keras_cnn.app import loop_backup
    from keras_cnn.model import clone

    twin = clone(model)
    callback_list = keras.callbacks.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                                                 verbose=verbose, epochs=epochs, steps=steps, model=twin)
    step = _step(model, optimizer, losses, weights, strategy, global_batch, jit_compile, multilabel)
    backup, start = _restore(backup_dir, model, optimizer, steps, backup_steps, strategy, resume)
    iterator = iter(strategy.experimental_distribute_dataset(loop_backup.fast_forward(train, start.done)))
    twin.stop_training = False
    logs = {}
    callback_list.on_train_begin()
    with _peers_lost(strategy, backup_dir):
        for epoch in range(start.epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            logs = _epoch_steps(step, iterator, epoch, start, backup, callback_list)
            twin.set_weights(model.get_weights())
            if validation is not None:
                logs.update(_evaluate(twin, losses[0], validation, multilabel))
            callback_list.on_epoch_end(epoch, logs)
            if backup:  # after the epoch's log row and best weights: a kill between them reruns the epoch's tail
                backup.save(epoch + 1, 0)
            if _any_worker(strategy, twin.stop_training):
                break
    callback_list.on_train_end(logs)
    if backup and backup.chief:  # ended normally (early stopping too), as BackupAndRestore does
        loop_backup.discard(backup_dir)
    return twin


def _epoch_steps(step, iterator, epoch, start, backup, callback_list):
    """The optimizer steps of ``epoch`` (from the backup's step when it is the one resumed); its logs."""
    from keras_cnn.app import loop_backup

    first = start.step if epoch == start.epoch else 0
    totals = np.array(start.totals if first else loop_backup.NO_TOTALS)  # the epoch's sums so far
    logs = {}
    for batch in range(first, start.steps):
        callback_list.on_train_batch_begin(batch)
        totals += [float(v) for v in step(next(iterator))]
        logs = {"loss": totals[0] / totals[3], "accuracy": totals[1] / totals[2]}
        if backup and backup.due(epoch, batch + 1):  # before the batch-end callbacks: the heartbeat trails it
            backup.save(epoch, batch + 1, totals)
        callback_list.on_train_batch_end(batch, logs)
    return logs


def _restore(directory, model, optimizer, steps, every, strategy, resume):
    """The ``LoopBackup`` (None without ``directory``) and the ``Position`` training starts at, restored on every
    worker from the chief's latest checkpoint (``resume`` False: the start, whatever the others may still see
    of a backup the chief is deleting)."""
    from keras_cnn.app import loop_backup

    if directory is None:
        return None, loop_backup.Position(steps=steps)
    backup = loop_backup.LoopBackup(directory, model=model, optimizer=optimizer, chief=task()[1], steps=steps,
                                    every=every)
    start = backup.restore() if resume else loop_backup.Position(steps=steps)
    _check_same_start(strategy, start.done, directory)
    if start.done:
        print(f"custom loop: restored the backup of {start.describe()} ({start.done} optimizer steps) from "
              f"{directory}; the data stream skips its {start.done} batches", flush=True)
    return backup, start


def _check_same_start(strategy, done, directory):
    """Refuse to train when the workers restored different backups (the folder is not one shared folder): their
    weights would differ while their updates stay the same, and nothing else would notice."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    replicas = strategy.num_replicas_in_sync  # each replica adds its worker's value
    sums = _sum_across(strategy, tf.constant([done, done * done], tf.float64)).numpy()
    if sums[0] * sums[0] != replicas * sums[1]:  # all equal exactly when the variance across them is 0
        raise ValueError(f"the workers found different backups in {directory} (this worker: {done} steps; "
                         f"mean {sums[0] / replicas:g}); --output must be on storage every worker sees (a shared "
                         f"file system, or a bucket mounted as one), or pass --no-resume on every worker to start "
                         f"over.")


@contextlib.contextmanager
def _peers_lost(strategy, backup_dir):
    """Under MultiWorkerMirroredStrategy a dead worker fails the others' collective ops: say what to do."""
    import tensorflow as tf

    lost = (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError)
    try:
        yield
    except lost as error:
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            raise
        where = f"the backup in {backup_dir}" if backup_dir else "the start (no backup)"
        raise RuntimeError(f"a worker of the cluster stopped answering ({type(error).__name__} in a collective op, "
                           f"above); restart every worker with the same command: they resume from {where}") from error


def _step(model, optimizer, losses, weights, strategy, global_batch, jit_compile, multilabel=False):
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
        correct = _correct(outputs[0], targets[0], multilabel)
        return (tf.reduce_sum(per_example), tf.reduce_sum(correct), tf.cast(tf.size(correct), tf.float32),
                tf.cast(tf.size(per_example), tf.float32))

    replica_step = tf.function(replica_step, jit_compile=jit_compile) if jit_compile else replica_step

    @tf.function
    def step(batch):
        results = strategy.run(replica_step, args=batch)
        return [strategy.reduce("SUM", value, axis=None) for value in results]

    return step


def _per_example(loss, labels, outputs):
    import tensorflow as tf

    return loss(labels, tf.cast(outputs, tf.float32))  # float32 loss under mixed precision


def _correct(scores, labels, multilabel):
    """1.0 per right decision: per image (top class is the label) or, ``multilabel``, per image and class (score
    >= 0.5 exactly where the label is 1)."""
    import tensorflow as tf

    if multilabel:
        return tf.cast(tf.equal(tf.cast(scores, tf.float32) >= 0.5, tf.cast(labels, tf.float32) >= 0.5), tf.float32)
    return tf.cast(tf.equal(tf.argmax(scores, -1), _class_index(labels)), tf.float32)


def _class_index(labels):
    import tensorflow as tf

    return tf.argmax(labels, -1) if labels.shape.rank > 1 else tf.cast(labels, tf.int64)


def _evaluate(model, loss, dataset, multilabel=False):
    """Main-output ``val_loss`` and ``val_accuracy`` of the plain twin (no collectives: every worker alike)."""
    from keras_cnn.model import inference_model

    main = inference_model(model)
    total = correct = decisions = count = 0.0
    for images, labels in dataset:
        labels = labels[0] if isinstance(labels, tuple) else labels
        probabilities = main(images, training=False)
        total += float(np.sum(_per_example(loss, labels, probabilities)))
        right = np.asarray(_correct(probabilities, labels, multilabel))
        correct, decisions = correct + float(np.sum(right)), decisions + right.size  # x classes for multilabel
        count += len(probabilities)
    return {"val_loss": total / count, "val_accuracy": correct / decisions}


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
