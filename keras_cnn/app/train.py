"""Train a registered model with model.fit: data, recipe, callbacks, resume, distribution; a summary at the end.

Writes ``<output>/<name>.keras`` (the deployable model: auxiliary heads dropped, float32),
``<output>/<name>.preprocessing.json`` (what evaluate, predict and export feed it) and, under
``<output>/<name>_train/``, ``history.csv``, ``best.weights.h5`` (best by --monitor), ``backup/`` (deleted when
training ends; run the same command again after an interruption to resume) and ``tensorboard/``.
Example: ``keras-cnn train --model lenet5 --option pool=max --translate 0.08 --rotate 0.03``.
Transfer learning: ``--weights`` an upstream checkpoint (torchvision, timm, keras.applications) loads its trunk,
starts a new classifier for the data's classes and normalises inputs with the checkpoint's mean and std;
``--freeze-backbone N`` trains the new classifier alone for N epochs, then every layer.
Multi-label: ``--data multilabel-digits`` or ``listing:PATH`` trains a sigmoid classifier with binary
cross-entropy (``--task multilabel``) and chooses per-class thresholds on the validation split
(``--threshold-rule``), kept in the .keras model and the record.
From Python, without argparse: ``run(TrainConfig(model="lenet5", epochs=1, output="out"))`` (``TrainConfig`` from
``keras_cnn.app.train_config``: one field per flag, named as its argparse dest).
"""

import argparse
import contextlib
import dataclasses
import math
import os
import sys
import time
import warnings

from keras_cnn.app import flags
from keras_cnn.app.train_config import TASKS, THRESHOLD_RULES, Run, RunFiles, TrainConfig

LOOPS = ("auto", "fit", "custom")


def parser():
    from keras_cnn.app import distribute, preprocessing, recipes

    p = argparse.ArgumentParser(prog="keras-cnn train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    model = p.add_argument_group("model")
    model.add_argument("--model", type=flags.model_name, default="lenet5",
                       help="registered model name (keras-cnn list)")
    model.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="model option, repeatable (e.g. pool=max, aux_logits=True)")
    model.add_argument("--image-size", type=flags.integer(8), help="input height and width (default: the model's)")
    model.add_argument("--channels", type=flags.integer(1), help="input channels (default: the model's)")
    model.add_argument("--weights", help="a .weights.h5 file to start from, or an upstream checkpoint (torchvision/"
                                         "timm .pth/.safetensors, keras.applications .h5): its trunk is loaded, a "
                                         "new classifier starts, inputs get its mean/std")
    model.add_argument("--task", default="auto", choices=("auto", *TASKS),
                       help="multiclass (softmax, cross-entropy: one class per image) | multilabel (sigmoid, binary "
                            "cross-entropy: any number of labels per image, per-class thresholds chosen on the "
                            "validation split) | auto: multilabel for multi-label --data (multilabel-digits, "
                            "listing:PATH), else multiclass")
    model.add_argument("--threshold-rule", default="f1", choices=THRESHOLD_RULES,
                       help="multilabel: each class's threshold maximises its validation F1 (f1), or sits at its "
                            "precision/recall break-even point (break_even); default: %(default)s")
    model.add_argument("--name", help="name of the model and its files (default: the model name)")
    model.add_argument("--output", default="saved_models", help="output folder (default: %(default)s)")
    flags.add_data(p)
    pre = p.add_argument_group("preprocessing and augmentation (tf.data ops, outside the model)")
    pre.add_argument("--normalization", default="auto", choices=preprocessing.NORMALIZATIONS,
                     help="auto: the checkpoint's mean/std with --weights CHECKPOINT, else [-1, 1] for "
                          "Inception/Xception, minus the mean RGB for AlexNet/VGG, [0, 1] else")
    pre.add_argument("--random-crop", type=flags.integer(1), metavar="RESIZE",
                     help="AlexNet: resize to RESIZE x RESIZE, train on random input-size crops, evaluate the "
                          "centre crop (e.g. 256 for 224 inputs)")
    pre.add_argument("--scale-jitter", type=flags.int_pair, metavar="MIN,MAX",
                     help="VGG: rescale each training image to a random side S in [MIN, MAX], then random crop; "
                          "evaluate at (MIN+MAX)/2 (e.g. 256,512)")
    pre.add_argument("--flip", action="store_true", help="random horizontal flips")
    pre.add_argument("--pca-noise", type=flags.number(0.0), default=0.0, metavar="STD",
                     help="AlexNet PCA colour noise: alpha ~ N(0, STD) along the training pixels' principal "
                          "components (paper: 0.1)")
    pre.add_argument("--translate", type=flags.number(0.0, 1.0), default=0.0, metavar="FRACTION",
                     help="random translation up to this fraction of height/width (digits recipe: 0.08)")
    pre.add_argument("--rotate", type=flags.number(0.0, 1.0), default=0.0, metavar="FRACTION",
                     help="random rotation up to this fraction of a turn (digits recipe: 0.03)")
    fit = p.add_argument_group("optimisation")
    fit.add_argument("--epochs", type=flags.integer(1), default=40, help="epochs (default: %(default)s)")
    fit.add_argument("--batch-size", type=flags.integer(1), default=32, help="global batch size (default: 32)")
    fit.add_argument("--optimizer", default="adam", choices=recipes.OPTIMIZERS, help="default: %(default)s")
    fit.add_argument("--learning-rate", type=flags.number(0.0), default=3e-3, help="initial / peak rate")
    fit.add_argument("--momentum", type=flags.number(0.0, 1.0), default=0.9, help="SGD / RMSprop momentum")
    fit.add_argument("--nesterov", action="store_true", help="Nesterov momentum (SGD)")
    fit.add_argument("--weight-decay", type=flags.number(0.0), default=0.0,
                     help="decoupled weight decay per step (AlexNet/VGG: 5e-4 with SGD)")
    fit.add_argument("--schedule", default="cosine", choices=recipes.SCHEDULES, help="learning-rate schedule")
    fit.add_argument("--step-epochs", type=flags.integer(1), default=30, help="step: epochs between drops")
    fit.add_argument("--step-factor", type=flags.number(0.0, 1.0), default=0.1, help="step: factor per drop")
    fit.add_argument("--decay-epochs", type=flags.number(0.01), default=2.0, help="exponential: epochs per decay")
    fit.add_argument("--decay-rate", type=flags.number(0.0, 1.0), default=0.94, help="exponential: factor")
    fit.add_argument("--label-smoothing", type=flags.number(0.0, 0.99), default=0.0,
                     help="label smoothing (Inception v3: 0.1)")
    fit.add_argument("--aux-weight", type=flags.number(0.0), default=0.3,
                     help="loss weight of auxiliary classifiers (models built with --option aux_logits=True)")
    fit.add_argument("--recalibrate-bn", action="store_true",
                     help="after training, recompute every BatchNorm layer's moving mean/variance over the training "
                          "images without augmentation (keras_cnn.recalibrate_batch_norm), before the save and the "
                          "test; the summary suggests it when the statistics look stale")
    fit.add_argument("--freeze-backbone", type=flags.integer(0), default=0, metavar="N",
                     help="train only the new classifier for the first N epochs (every other layer frozen, "
                          "BatchNorm in inference mode), then every layer with a fresh optimizer (needs --weights)")
    fit.add_argument("--fine-tune-learning-rate", type=flags.number(0.0), metavar="RATE",
                     help="with --freeze-backbone: the learning rate after the first N epochs (default: "
                          "--learning-rate)")
    fit.add_argument("--mixed-precision", action="store_true",
                     help="mixed precision (float16 on GPU, bfloat16 on CPU); the saved model is float32")
    fit.add_argument("--xla", action="store_true", help="compile the training step with XLA")
    run = p.add_argument_group("callbacks and distribution")
    run.add_argument("--monitor", default="auto",
                     help="metric for the best checkpoint and early stopping: loss, accuracy, val_loss, "
                          "val_accuracy, val_{pr_auc,roc_auc,f1}_{macro,micro}; with auxiliary heads under model.fit "
                          "also [val_]<output>_loss and [val_]predictions_accuracy; auto: val_accuracy, or "
                          "val_f1_micro for --task multilabel (default: %(default)s)")
    run.add_argument("--patience", type=flags.integer(0), default=0, help="early-stopping patience (0: off)")
    run.add_argument("--final", default="best", choices=("best", "last"),
                     help="save the best checkpoint's weights or the last epoch's (default: %(default)s)")
    run.add_argument("--backup-steps", type=flags.integer(0), default=0, metavar="N",
                     help="custom loop (multiworker): also back up every N optimizer steps, besides each epoch's end "
                          "(0: epoch ends only)")
    run.add_argument("--no-resume", dest="resume", action="store_false",
                     help="discard a backup left by an interrupted run instead of resuming from it")
    run.add_argument("--progress-file", help="JSON heartbeat {epoch, batch, time} rewritten after every batch")
    run.add_argument("--strategy", default="default", choices=distribute.STRATEGIES,
                     help="default | mirrored (local GPUs, else --devices logical CPUs) | multiworker (TF_CONFIG)")
    run.add_argument("--devices", type=flags.integer(1), default=2, help="mirrored: replicas (default: 2)")
    run.add_argument("--loop", default="auto", choices=LOOPS,
                     help="fit (model.fit) | custom (step under strategy.run) | auto: custom for multiworker")
    run.add_argument("--verbose", type=int, choices=(0, 1, 2),
                     help="Keras verbosity (default: progress bar on a terminal, one line per epoch otherwise)")
    return p


def main(argv=None):
    return run(parser().parse_args(argv))


def run(args):
    """Train as ``args`` says (a ``TrainConfig``, or the ``argparse.Namespace`` of ``parser()``); returns a dict
    of the summary (test accuracy, epochs, files...)."""
    from keras_cnn.app import distribute

    config = args if isinstance(args, TrainConfig) else TrainConfig.from_args(args)
    started = time.perf_counter()
    strategy = distribute.create(config.strategy, config.devices)  # before any other TensorFlow work
    import keras

    from keras_cnn.app import memory

    policy = keras.mixed_precision.global_policy()
    try:
        with memory.explained(f"training {config.stem} on {memory.shape(*_input_shape(config))} inputs in "
                              f"batches of {config.batch_size}", "lower --batch-size or --image-size"):
            return _train(config, strategy, started)
    except KeyboardInterrupt as error:
        raise Interrupted(config) from error
    finally:
        keras.mixed_precision.set_global_policy(policy)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training, saying where the backup is and what a new run of the same command resumes from
    (model.fit: ``keras.callbacks.BackupAndRestore`` after every epoch; the custom loop: ``loop_backup`` after
    every epoch and every --backup-steps steps)."""

    def __init__(self, config):
        backup = RunFiles.of(config).backup
        if config.custom_loop:
            self.resumable, text = self._custom(config, backup)
        else:
            self.resumable, text = self._fit(backup)
        super().__init__(text)

    @staticmethod
    def _custom(config, backup):
        from keras_cnn.app import loop_backup

        where = loop_backup.position(backup)
        every = f" and every {config.backup_steps} steps" if config.backup_steps else ""
        if not where.done:
            return False, (f"the custom loop backs up at each epoch's end{every}; none was made yet, so {backup} "
                           f"holds no backup; the same command starts over")
        return True, (f"the custom loop's backup in {backup} holds the state at {where.describe()} "
                      f"({where.done} optimizer steps; it backs up at each epoch's end{every}); the same command "
                      f"resumes from it, the steps since then run again")

    @staticmethod
    def _fit(backup):
        from keras_cnn.app import fit_callbacks

        epochs = fit_callbacks.resume_epoch(backup)
        if not epochs:
            return False, f"no epoch had finished, so {backup} holds no backup; the same command starts over"
        return True, f"the backup of the first {epochs} epoch(s) is in {backup}; the same command resumes from it"

    @staticmethod
    def resume_command(argv):
        """The command line that resumes (``--no-resume`` would discard the backup)."""
        import shlex

        return shlex.join(arg for arg in argv if arg != "--no-resume")


def _input_shape(config):
    """``((height, width), channels)`` of the model's input: the flags', else the model's defaults."""
    from keras_cnn import registry

    entry = registry.get(config.model)
    return (config.image_size,) * 2 if config.image_size else entry.default_input[:2], \
        config.channels or entry.default_input[2]


def _train(config, strategy, started):
    import keras

    from keras_cnn import registry
    from keras_cnn.app import distribute, fit_callbacks, preprocessing, recipes, train_summary
    from keras_cnn.model import weights_info

    _, chief = distribute.task()
    if chief:  # before the long work: a folder it cannot write would otherwise fail the run at its end
        from keras_cnn.app import paths

        files = RunFiles.of(config)
        paths.check_writable(config.output, "--output", [files.model, files.record, files.log])
    keras.mixed_precision.set_global_policy(recipes.precision_policy(config.mixed_precision))
    entry = registry.get(config.model)
    keras.utils.set_random_seed(config.seed)  # the model's initial weights are the first build's
    first = _first_build(config, entry)
    fit_callbacks.resolve_monitor(config.monitor, first.output_names, config.custom_loop)
    data, record, recipe = _data(config, entry, weights_info(first))
    files = RunFiles.of(config)
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = _build(config, record, first)
    resume_from = _resume_point(config, files, chief)
    run = Run(strategy, chief, config.custom_loop, files, data, record, recipe, resume_from, started)
    _announce(config, run, model)
    history, trained, steps = (_custom if run.custom else _fit)(config, run, model)
    outcome = train_summary.Outcome(history, fingerprint=distribute.fingerprint(trained),  # equal on every worker
                                    optimizer_steps=steps)  # all epochs', resumed or not
    final = _final(config, run, trained)
    _check_finite(config, final, history)
    if config.recalibrate_bn:
        outcome = dataclasses.replace(outcome, recalibrated=_recalibrate(config, run, final))
    if config.multilabel:  # after the weights are final: the thresholds are chosen on their scores
        run = dataclasses.replace(run, record=_thresholds(config, run, final))
    if chief:
        from keras_cnn import _files

        with _files.publish_together(os.path.dirname(os.path.abspath(files.model))):  # the model and its record
            _files.write_whole(files.model, _deployable(final).save, overwrite=True)
            preprocessing.save(run.record, files.record)
    return train_summary.finish(config, run, final, outcome)


def _deployable(model):
    """``model`` without its compile state (same layers, no copy): the ``.keras`` users ship carries no optimizer
    (Adam's two slots per weight are twice the model); the optimizer lives in the resume backup only."""
    import keras

    from keras_cnn.model import _with_info, has_config, model_config, stored_config

    if not has_config(model):
        return keras.Model(model.inputs, model.outputs, name=model.name)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    outputs = model.outputs[0] if len(model.outputs) == 1 else model.outputs
    return _with_info(stored_config(inputs, outputs, model.name, model_config(model)), model)


def _thresholds(config, run, model):
    """--task multilabel: one decision threshold per class chosen on the validation split by --threshold-rule
    (keras_cnn.thresholds), stored in ``model`` (its .keras file keeps them); returns the record with them."""
    import warnings

    from keras_cnn import thresholds
    from keras_cnn.app import pipeline, preprocessing

    images, labels = pipeline.arrays(run.data["val"], run.record)
    scores = model.predict(images, batch_size=config.batch_size, verbose=0)
    with warnings.catch_warnings(record=True) as caught:  # a class absent from validation keeps 0.5
        warnings.simplefilter("always")
        chosen = thresholds.choose_thresholds(labels, scores, rule=config.threshold_rule)
    for warning in caught:
        print(f"note: {warning.message}")
    thresholds.attach(model, chosen)
    return preprocessing.with_thresholds(run.record, chosen)


def _recalibrate(config, run, model):
    """--recalibrate-bn: the BN statistics of the training split, centre-cropped and normalised as for evaluation
    (no augmentation); returns ``recalibrate_batch_norm``'s summary."""
    import keras_cnn
    from keras_cnn.app import pipeline

    images = pipeline.evaluation(run.data["train"], run.record, batch_size=config.batch_size, cache=config.cache)
    return keras_cnn.recalibrate_batch_norm(model, images)


def _check_finite(config, model, history):
    """Refuse to save a model whose weights went NaN or infinite (training diverged; ``TerminateOnNaN`` stopped
    it, and the best checkpoint, when there is one, is no better)."""
    import numpy as np

    if all(np.isfinite(w).all() for w in model.get_weights()):
        return
    losses = history.history.get("loss", [])
    epoch = next((e for e, loss in zip(history.epoch, losses) if not np.isfinite(loss)), None)
    when = f"the loss became NaN or infinite in epoch {epoch + 1}" if epoch is not None else "its weights are NaN"
    raise ValueError(f"training {config.stem} diverged ({when}); the {config.final} weights are not finite, so no "
                     f"model was saved; lower --learning-rate (received {config.learning_rate:g}).")


def _data(config, entry, info):
    """The data splits, the preprocessing record and the augmentation recipe (``info``: the checkpoint record of
    the weights, or None)."""
    from keras_cnn.app import augment, pipeline, preprocessing, sources

    normalization = _normalization(config, entry, info)
    height, width = (config.image_size,) * 2 if config.image_size else entry.default_input[:2]
    channels = config.channels or entry.default_input[2]
    source = sources.parse(config.data, seed=config.seed, val_fraction=config.val_fraction,
                           test_fraction=config.test_fraction, data_dir=config.data_dir, download=config.download)
    jitter = config.scale_jitter
    eval_side = (sum(jitter) // 2 if jitter else config.random_crop) or None
    stored = (jitter[1],) * 2 if jitter else (eval_side,) * 2 if eval_side else (height, width)
    data = sources.load(source, ("train", "val", "test"), size=stored, channels=channels, limit=config.limit,
                        max_pixels=config.max_pixels)
    recipe = augment.Recipe(crop=bool(config.random_crop), scale_jitter=jitter, flip=config.flip,
                            pca_noise=config.pca_noise, translate=config.translate, rotate=config.rotate)
    needs_sample = normalization in ("mean", "standardize") or recipe.pca_noise > 0
    sample = _sample(data["train"], pipeline) if needs_sample else None
    record = preprocessing.create((height, width, channels), data["train"].class_names, normalization=normalization,
                                  images=sample, resize=(eval_side,) * 2 if eval_side else None,
                                  model=config.stem, data=source.to_json(), statistics=_statistics(info),
                                  task=config.task)
    return data, record, recipe.with_pca(sample) if sample is not None else recipe


FIXED_STATISTICS = {"unit": (0.0, 1.0), "symmetric": (0.5, 0.5)}  # --normalization values with known mean, std


def _normalization(config, entry, info):
    """--normalization resolved: with upstream checkpoint weights, "checkpoint" (its mean and std) unless an
    explicit value gives the same numbers; any other is a ``ValueError`` naming both."""
    from keras_cnn.app import preprocessing

    requested = config.normalization
    if info is None:
        if requested == "checkpoint":
            raise ValueError(f"--normalization checkpoint takes the mean and std of an upstream checkpoint given "
                             f"with --weights (.pth, .safetensors, keras.applications .h5); received --weights "
                             f"{config.weights!r}.")
        return preprocessing.resolve_normalization(requested, entry.family)
    if requested in ("auto", "checkpoint"):
        return "checkpoint"
    mean, std = info["preprocessing"]["mean"], info["preprocessing"]["std"]
    fixed = FIXED_STATISTICS.get(requested)
    if fixed and all(m == fixed[0] for m in mean) and all(s == fixed[1] for s in std):
        return requested
    raise ValueError(f"--normalization {requested} differs from the preprocessing the weights of "
                     f"{preprocessing.describe_checkpoint(info)} were trained with (mean {list(mean)}, std "
                     f"{list(std)}); pass --normalization auto or checkpoint to use it; received {requested!r}.")


def _statistics(info):
    return None if info is None else (info["preprocessing"]["mean"], info["preprocessing"]["std"])


def _sample(split, pipeline, count=2000):
    return pipeline.arrays(dataclasses.replace(split, dataset=split.dataset.take(count)))[0]


def _build(config, record, first):
    """The model to train: the first build with the data's class count (a new head if it differs; the trunk and
    the checkpoint record of upstream weights carry over), then a ``.weights.h5`` file's weights."""
    import keras_cnn

    model = keras_cnn.rebuild(first, classes=len(record.class_names))
    if config.weights and not _upstream(config.weights):
        model.load_weights(config.weights)
    return model


def _upstream(weights):
    """Whether --weights is an upstream checkpoint (anything but Keras's own ``.weights.h5``, as in build)."""
    return weights is not None and not weights.endswith(".weights.h5")


def _first_build(config, entry):
    """Build the model before the data loads (which sets its class count), so that a bad --option, a checkpoint
    that does not fit, or a model --mixed-precision cannot train, fails at once; the epoch logs' keys follow its
    output names. An upstream checkpoint is converted here (its options and record come with it)."""
    import keras_cnn
    from keras_cnn.cli import parse_options

    from keras_cnn import _head

    _head.check_weights(config.weights)
    options = parse_options(config.option)
    size = (config.image_size,) * 2 if config.image_size else entry.default_input[:2]
    checkpoint = config.weights if _upstream(config.weights) else None
    try:
        with _quiet("keras_cnn.weights"):  # its "classifier starts fresh" names the placeholder 2 classes
            model = keras_cnn.build(config.model, input_shape=(*size, config.channels or entry.default_input[2]),
                                    classes=2, name=config.stem, weights=checkpoint, **_head_options(config, options))
    except (ValueError, TypeError) as error:
        given = ([f"--option {', '.join(config.option)}"] if options else []) + \
            ([f"--weights {checkpoint}"] if checkpoint else [])
        if not given:
            raise
        raise (ValueError if isinstance(error, ValueError) else TypeError)(f"{', '.join(given)}: {error}") from error
    _check_precision(model)
    _check_batch_norm(config, model)
    return model


def _head_options(config, options):
    """The --option values, with a sigmoid classifier for --task multilabel (independent per-class scores)."""
    if not config.multilabel:
        return options
    given = options.get("classifier_activation", "sigmoid")
    if given != "sigmoid":
        raise ValueError(f"--task multilabel trains independent per-class probabilities (a sigmoid classifier, "
                         f"binary cross-entropy); received --option classifier_activation={given}.")
    return {**options, "classifier_activation": "sigmoid"}


def _check_batch_norm(config, model):
    from keras_cnn.batch_norm import batch_norm_layers

    if config.recalibrate_bn and not batch_norm_layers(model):
        raise ValueError(f"--recalibrate-bn recomputes BatchNormalization statistics; model {model.name!r} has no "
                         f"BatchNormalization layer; received --recalibrate-bn with --model {config.model}.")


@contextlib.contextmanager
def _quiet(logger):
    """Warnings of ``logger`` held back (errors still pass)."""
    import logging

    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _check_precision(model):
    """Refuse before training what TensorFlow would fail on in the first step."""
    import keras

    policy = keras.mixed_precision.global_policy().name
    lrn = [layer.name for layer in model.layers if type(layer).__name__ == "LocalResponseNormalization"]
    if policy == "mixed_bfloat16" and lrn:
        raise ValueError(f"--mixed-precision on CPU computes in bfloat16, for which TensorFlow has no LRN kernel; "
                         f"{model.name} has LRN layers ({', '.join(lrn[:3])}); train it in float32 or on a GPU.")


def _resume_point(config, files, chief):
    """The epoch a backup lets this run start at; a fresh run first clears the last run's backup and best (the
    chief only: the files are its own). Under the custom loop every worker reads it (all restore the chief's
    backup); its backup may also hold a step inside that epoch (``loop_backup.position``)."""
    import shutil

    from keras_cnn.app import fit_callbacks, loop_backup

    if chief and not config.resume and os.path.isdir(files.backup):
        shutil.rmtree(files.backup)
    if config.custom_loop:  # --no-resume: the others must not read what the chief is deleting
        epoch = loop_backup.position(files.backup).epoch if config.resume else 0
    elif chief:
        epoch = fit_callbacks.resume_epoch(files.backup)
    else:
        return 0
    if chief and epoch == 0 and os.path.isfile(files.best):
        os.remove(files.best)  # a previous run's best must not stand in for this run's
    return epoch


def _announce(config, run, model):
    from keras_cnn import _images

    train = run.data["train"]
    counts = "/".join(str(run.data[role].count) for role in ("train", "val", "test"))
    skipped = f", {train.skipped} unreadable file(s) skipped: {_images.name_skipped(train.skipped_files)}" \
        if train.skipped else ""
    print(f"{model.name}: {model.count_params():,} parameters, {len(model.outputs)} output(s); {config.data}: "
          f"{counts} train/val/test images, {len(train.class_names)} classes"
          f"{' (multi-label)' if config.multilabel else ''}{skipped}")
    _announce_weights(config, run, model)
    # epochs numbered from 1, as Keras prints them ("Epoch 3/10")
    resuming = (f"; resuming from the backup of epochs 1..{run.resume_from} at epoch {run.resume_from + 1}/"
                f"{config.epochs}") if run.resume_from else ""
    print(f"{config.strategy} strategy, {run.strategy.num_replicas_in_sync} replica(s), "
          f"{'custom training loop' if run.custom else 'model.fit'}{resuming}", flush=True)


def _announce_weights(config, run, model):
    """What upstream weights brought, and the two phases of --freeze-backbone."""
    from keras_cnn.app import preprocessing
    from keras_cnn.model import weights_info

    info = weights_info(model)
    if info is not None:
        record = run.record
        print(f"weights: {preprocessing.describe_checkpoint(info)}: trunk loaded, a new "
              f"{len(record.class_names)}-class classifier; inputs normalised with its mean {list(record.mean)} "
              f"and std {list(record.std)}")
    if config.freeze_backbone:
        head = sum(int(w.numpy().size) for layer in _head_layers(model) for w in layer.trainable_weights)
        rate = config.fine_tune_learning_rate or config.learning_rate
        print(f"epochs 1..{config.freeze_backbone}: the classifier alone ({head:,} of "
              f"{model.count_params():,} parameters train); epochs {config.freeze_backbone + 1}..{config.epochs}: "
              f"every layer, a fresh optimizer at learning rate {rate:g}")


def _verbose(config):
    return config.verbose if config.verbose is not None else (1 if sys.stdout.isatty() else 2)


def _optimizer(config, steps, epochs=None, rate=None):
    """The optimizer of --optimizer with the --schedule from ``rate`` (default --learning-rate) over ``epochs``
    (default --epochs) of ``steps`` (create it in the strategy's scope)."""
    from keras_cnn.app import recipes

    schedule = recipes.Schedule(config.schedule, rate or config.learning_rate, config.step_epochs,
                                config.step_factor, config.decay_epochs, config.decay_rate)
    return recipes.optimizer(config.optimizer, recipes.learning_rate(schedule, steps, epochs or config.epochs),
                             momentum=config.momentum, weight_decay=config.weight_decay, nesterov=config.nesterov)


def _inputs(config, run, model, **training):
    """The training and validation datasets, with the model's targets (``training``: the loop's batching)."""
    from keras_cnn.app import pipeline, recipes

    targets = recipes.targets(model, len(run.record.class_names), config.label_smoothing, config.multilabel)
    train = pipeline.training(run.data["train"], run.record, run.recipe, batch_size=config.batch_size,
                              seed=config.seed, targets=targets, cache=config.cache, **training)
    validation = pipeline.evaluation(run.data["val"], run.record, batch_size=config.batch_size, targets=targets,
                                     cache=config.cache)
    return train, validation


def _callbacks(config, run, model, phase=None):
    """The callbacks of the run, or of one ``_Phase`` of it (its first epoch, early stopping in the last phase
    only, the first phase's backup kept for the second)."""
    from keras_cnn.app import fit_callbacks, pipeline

    # Keras 3.15's predict_on_batch under MirroredStrategy predicts the whole batch on every replica and
    # concatenates (twice the rows), so with several replicas model.fit's callback gets arrays and uses
    # model.predict (the custom loop predicts per worker).
    replicas = 1 if run.custom else run.strategy.num_replicas_in_sync
    validation = pipeline.arrays(run.data["val"], run.record) if replicas > 1 else \
        pipeline.evaluation(run.data["val"], run.record, batch_size=config.batch_size, cache=config.cache)
    class_names = list(run.record.class_names)
    monitor = fit_callbacks.resolve_monitor(config.monitor, model.output_names, run.custom)
    if not run.chief:  # the same logs on every worker (their stop decisions must agree), no files
        return [fit_callbacks.ValidationMetrics(validation, task=config.task, class_names=class_names)]
    os.makedirs(run.files.folder, exist_ok=True)
    phase = phase or _Phase(0, config.epochs)
    return fit_callbacks.standard(run.files, validation=validation, class_names=class_names, task=config.task,
                                  monitor=monitor,
                                  patience=0 if phase.keep_backup else config.patience,
                                  resume_from=max(run.resume_from, phase.first), backup=not run.custom,
                                  keep_backup=phase.keep_backup, progress_file=config.progress_file,
                                  tensorboard_dir=run.files.tensorboard)


@dataclasses.dataclass(frozen=True)
class _Phase:
    """Epochs ``first`` to ``stop`` (exclusive) of one model.fit with its own optimizer (its schedule spans
    them); ``head_only``: True trains the classifier alone, False every layer, None leaves the layers as built;
    ``keep_backup``: the backup outlives it (a later phase takes it over)."""

    first: int
    stop: int
    head_only: bool | None = None
    rate: float | None = None
    keep_backup: bool = False


def _phases(config):
    """One phase, or with --freeze-backbone N the classifier alone for N epochs and then every layer."""
    frozen = config.freeze_backbone
    if not frozen:
        return [_Phase(0, config.epochs)]
    return [_Phase(0, frozen, head_only=True, keep_backup=True),
            _Phase(frozen, config.epochs, head_only=False, rate=config.fine_tune_learning_rate)]


def _fit(config, run, model):
    """model.fit over the phases; returns the joined history, the model and the optimizer steps of all epochs.
    A phase that ended before the backup this run resumes from is skipped (its steps counted)."""
    data = _inputs(config, run, model)
    steps = math.ceil(run.data["train"].count / config.batch_size)
    histories, done = [], 0
    for phase in _phases(config):
        if phase.keep_backup and run.resume_from >= phase.stop:
            done += (phase.stop - phase.first) * steps
            continue
        history, optimizer = _fit_phase(config, run, model, data, steps, phase, hand_over=bool(histories))
        histories.append(history)
        done += int(optimizer.iterations.numpy())
        if len(history.epoch) < phase.stop - max(run.resume_from, phase.first):
            break  # TerminateOnNaN stopped it: no fine-tuning from there
    if config.freeze_backbone:
        _set_trainable(model, head_only=False)
    return _joined(histories), model, done


def _fit_phase(config, run, model, data, steps, phase, hand_over):
    """One phase: layers frozen or not, a fresh optimizer, compile, then model.fit from the resume point. With
    ``hand_over`` (an earlier phase ran in this process) its backup becomes this phase's start."""
    from keras_cnn.app import fit_callbacks, recipes

    train, validation = data
    if phase.head_only is not None:
        _set_trainable(model, phase.head_only)
    with run.strategy.scope():
        model.compile(_optimizer(config, steps, phase.stop - phase.first, phase.rate), jit_compile=config.xla,
                      **recipes.compile_kwargs(model, config.label_smoothing, config.aux_weight, config.multilabel))
        if hand_over and run.chief:
            fit_callbacks.hand_over_backup(model, run.files.backup)
    interrupt = fit_callbacks.InterruptBetweenBatches()
    try:
        history = model.fit(train, validation_data=validation, initial_epoch=max(run.resume_from, phase.first),
                            epochs=phase.stop, callbacks=[*_callbacks(config, run, model, phase), interrupt],
                            verbose=_verbose(config), shuffle=False)
    finally:
        interrupt.restore()
    return history, model.optimizer


def _head_layers(model):
    """The classifier layers (``keras_cnn.model.CLASSIFIER_LAYERS``): the layers a new class count renews. Hidden
    fully connected layers (VGG's fc6/fc7, LeNet's f6) came with the checkpoint and count as trunk."""
    from keras_cnn.model import CLASSIFIER_LAYERS

    head = [layer for layer in model.layers if layer.name in CLASSIFIER_LAYERS]
    if not head:
        raise ValueError(f"--freeze-backbone needs a classifier layer ({', '.join(CLASSIFIER_LAYERS)}); model "
                         f"{model.name!r} has none.")
    return head


def _set_trainable(model, head_only):
    """Freeze every layer but the classifier (a frozen BatchNorm also runs in inference mode), or unfreeze all."""
    head = set(id(layer) for layer in _head_layers(model))
    for layer in model.layers:
        layer.trainable = not head_only or id(layer) in head


def _joined(histories):
    """The Keras ``History`` of several model.fit calls, as one."""
    import keras

    joined = keras.callbacks.History()
    joined.epoch = []
    for history in histories:
        joined.epoch += history.epoch
        for key, values in history.history.items():
            joined.history.setdefault(key, []).extend(values)
    return joined


def _custom(config, run, model):
    """The custom loop (``distribute.custom_fit``), backed up in ``run.files.backup``; Ctrl-C stops it at a batch's
    end (after that step's backup, when one is due), never inside a backup's write."""
    from keras_cnn.app import distribute, fit_callbacks, recipes

    steps = run.data["train"].count // config.batch_size
    if steps == 0:
        raise ValueError(f"--batch-size must be at most the {run.data['train'].count} training images for the "
                         f"custom loop (it drops partial batches); received {config.batch_size}.")
    train, validation = _inputs(config, run, model, repeat=True, drop_remainder=True)
    with run.strategy.scope():
        optimizer = _optimizer(config, steps)
        if recipes.precision_policy(config.mixed_precision) == "mixed_float16":
            import keras

            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    weights = recipes.loss_weights(model, config.aux_weight)
    loss = recipes.loss(config.label_smoothing, reduction=None, multilabel=config.multilabel)
    interrupt = fit_callbacks.InterruptBetweenBatches()
    try:
        twin = distribute.custom_fit(
            model, optimizer, losses=[loss] * len(model.outputs), weights=list(weights.values()), train=train,
            steps=steps, global_batch=config.batch_size, epochs=config.epochs, strategy=run.strategy,
            callbacks=[*_callbacks(config, run, model), interrupt], validation=validation,
            verbose=_verbose(config), jit_compile=config.xla, multilabel=config.multilabel,
            backup_dir=run.files.backup, backup_steps=config.backup_steps, resume=config.resume)
    finally:
        interrupt.restore()
    return twin.history, twin, int(optimizer.iterations.numpy())


def _final(config, run, trained):
    """The model to save: best (or last) weights, main output only, float32 (only the chief has the best)."""
    import keras

    import keras_cnn

    if config.final == "best" and run.chief and os.path.isfile(run.files.best):
        with warnings.catch_warnings():  # a best epoch of --freeze-backbone's first phase had another optimizer
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
            trained.load_weights(run.files.best)
    if keras.mixed_precision.global_policy().name != "float32":
        keras.mixed_precision.set_global_policy("float32")
        trained = keras_cnn.rebuild(trained, dtype="float32")
    return keras_cnn.inference_model(trained)
