"""Train a registered model with model.fit: data, recipe, callbacks, resume, distribution; a summary at the end.

Writes ``<output>/<name>.keras`` (the deployable model: auxiliary heads dropped, float32),
``<output>/<name>.preprocessing.json`` (what evaluate, predict and export feed it) and, under
``<output>/<name>_train/``, ``history.csv``, ``best.weights.h5`` (best by --monitor), ``backup/`` (deleted when
training ends; run the same command again after an interruption to resume) and ``tensorboard/``.
Example: ``keras-cnn train --model lenet5 --option pool=max --translate 0.08 --rotate 0.03``.
"""

import argparse
import dataclasses
import math
import os
import sys
import time

from keras_cnn.app import flags

LOOPS = ("auto", "fit", "custom")


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """Where one training run writes (``folder`` is ``<output>/<name>_train``)."""

    model: str
    record: str
    folder: str

    @property
    def log(self):
        return os.path.join(self.folder, "history.csv")

    @property
    def best(self):
        return os.path.join(self.folder, "best.weights.h5")

    @property
    def backup(self):
        return os.path.join(self.folder, "backup")

    @property
    def tensorboard(self):
        return os.path.join(self.folder, "tensorboard")


def parser():
    from keras_cnn.app import distribute, preprocessing, recipes

    p = argparse.ArgumentParser(prog="keras-cnn train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    model = p.add_argument_group("model")
    model.add_argument("--model", default="lenet5", help="registered model name (keras_cnn.list_models())")
    model.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="model option, repeatable (e.g. pool=max, aux_logits=True)")
    model.add_argument("--image-size", type=flags.integer(8), help="input height and width (default: the model's)")
    model.add_argument("--channels", type=flags.integer(1), help="input channels (default: the model's)")
    model.add_argument("--weights", help="a .weights.h5 file to start from")
    model.add_argument("--name", help="name of the model and its files (default: the model name)")
    model.add_argument("--output", default="saved_models", help="output folder (default: %(default)s)")
    flags.add_data(p)
    pre = p.add_argument_group("preprocessing and augmentation (tf.data ops, outside the model)")
    pre.add_argument("--normalization", default="auto", choices=preprocessing.NORMALIZATIONS,
                     help="auto: [-1, 1] for Inception/Xception, minus the mean RGB for AlexNet/VGG, [0, 1] else")
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
    fit.add_argument("--mixed-precision", action="store_true",
                     help="mixed precision (float16 on GPU, bfloat16 on CPU); the saved model is float32")
    fit.add_argument("--xla", action="store_true", help="compile the training step with XLA")
    run = p.add_argument_group("callbacks and distribution")
    run.add_argument("--monitor", default="val_accuracy",
                     help="metric for the best checkpoint and early stopping: loss, accuracy, val_loss, "
                          "val_accuracy, val_{pr_auc,roc_auc,f1}_{macro,micro}; with auxiliary heads under model.fit "
                          "also [val_]<output>_loss and [val_]predictions_accuracy (default: %(default)s)")
    run.add_argument("--patience", type=flags.integer(0), default=0, help="early-stopping patience (0: off)")
    run.add_argument("--final", default="best", choices=("best", "last"),
                     help="save the best checkpoint's weights or the last epoch's (default: %(default)s)")
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
    """Train as ``args`` says; returns a dict of the summary (test accuracy, epochs, files...)."""
    from keras_cnn.app import distribute

    _check(args)
    started = time.perf_counter()
    strategy = distribute.create(args.strategy, args.devices)  # before any other TensorFlow work
    import keras

    policy = keras.mixed_precision.global_policy()
    try:
        return _train(args, strategy, started)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _check(args):
    from keras_cnn import registry

    entry = registry.get(args.model)
    if args.random_crop and args.scale_jitter:
        raise ValueError(f"--random-crop and --scale-jitter both choose the crop; pass one; received "
                         f"--random-crop {args.random_crop} and --scale-jitter {args.scale_jitter}.")
    if args.image_size is not None and args.image_size < entry.min_input:
        raise ValueError(f"--image-size must be at least {entry.min_input} for model {entry.name!r} (its smallest "
                         f"input); received {args.image_size}.")
    size = args.image_size or entry.default_input[0]
    for flag, side in (("--random-crop", args.random_crop), ("--scale-jitter", (args.scale_jitter or [None])[0])):
        if side is not None and side < size:
            raise ValueError(f"{flag} must be at least the input size {size}; received {side}.")
    if args.loop == "fit" and args.strategy == "multiworker":
        raise ValueError("--loop fit cannot run under --strategy multiworker in Keras 3.15 (keras-team/keras#20585); "
                         "use --loop custom or auto.")


def _train(args, strategy, started):
    import keras

    from keras_cnn import registry
    from keras_cnn.app import distribute, fit_callbacks, preprocessing, recipes, train_summary

    _, chief = distribute.task()
    custom = args.loop == "custom" or (args.loop == "auto" and args.strategy == "multiworker")
    keras.mixed_precision.set_global_policy(recipes.precision_policy(args.mixed_precision))
    entry = registry.get(args.model)
    name = args.name or args.model
    keras.utils.set_random_seed(args.seed)  # the model's initial weights are the first build's
    first = _first_build(args, entry, name)
    fit_callbacks.resolve_monitor(args.monitor, first.output_names, custom)
    data, record, recipe = _data(args, entry)
    files = RunFiles(os.path.join(args.output, f"{name}.keras"),
                     os.path.join(args.output, f"{name}.preprocessing.json"),
                     os.path.join(args.output, f"{name}_train"))
    keras.utils.set_random_seed(args.seed)
    with strategy.scope():
        model = _build(args, record, first)
    resume_from = _resume_point(args, files, custom, chief)
    _announce(args, model, data, strategy, resume_from, custom)
    history, trained, optimizer = (
        _custom(args, model, data, record, recipe, strategy, files, chief) if custom
        else _fit(args, model, data, record, recipe, strategy, files, resume_from, chief))
    state = {"fingerprint": distribute.fingerprint(trained),  # of the last weights: equal on every worker
             "optimizer_steps": int(optimizer.iterations.numpy())}  # all epochs' steps, resumed or not
    final = _final(args, trained, files, chief)
    if chief:
        final.save(files.model)
        preprocessing.save(record, files.record)
    return train_summary.finish(args, final, data, record, files, history, resume_from, strategy,
                                time.perf_counter() - started, chief, state)


def _data(args, entry):
    from keras_cnn.app import augment, pipeline, preprocessing, sources

    height, width = (args.image_size,) * 2 if args.image_size else entry.default_input[:2]
    channels = args.channels or entry.default_input[2]
    source = sources.parse(args.data, seed=args.seed, val_fraction=args.val_fraction,
                           test_fraction=args.test_fraction, data_dir=args.data_dir, download=args.download)
    eval_side = (sum(args.scale_jitter) // 2 if args.scale_jitter else args.random_crop) or None
    stored = (args.scale_jitter[1],) * 2 if args.scale_jitter else (eval_side,) * 2 if eval_side else (height, width)
    data = sources.load(source, ("train", "val", "test"), size=stored, channels=channels, limit=args.limit)
    normalization = preprocessing.resolve_normalization(args.normalization, entry.family)
    recipe = augment.Recipe(crop=bool(args.random_crop), scale_jitter=args.scale_jitter, flip=args.flip,
                            pca_noise=args.pca_noise, translate=args.translate, rotate=args.rotate)
    needs_sample = normalization in ("mean", "standardize") or recipe.pca_noise > 0
    sample = _sample(data["train"], pipeline) if needs_sample else None
    record = preprocessing.create((height, width, channels), data["train"].class_names, normalization=normalization,
                                  images=sample, resize=(eval_side,) * 2 if eval_side else None,
                                  model=args.name or args.model, data=source.to_json())
    return data, record, recipe.with_pca(sample) if sample is not None else recipe


def _sample(split, pipeline, count=2000):
    import dataclasses

    return pipeline.arrays(dataclasses.replace(split, dataset=split.dataset.take(count)))[0]


def _build(args, record, first):
    """The model to train: the first build with the data's class count (a new head if it differs)."""
    import keras_cnn

    model = keras_cnn.rebuild(first, classes=len(record.class_names))
    if args.weights:
        model.load_weights(args.weights)
    return model


def _first_build(args, entry, name):
    """Build the model before the data loads (which sets its class count), so that a bad --option, or a model
    --mixed-precision cannot train, fails at once; the epoch logs' keys follow its output names."""
    import keras_cnn
    from keras_cnn.cli import parse_options

    from keras_cnn import _head

    _head.check_weights(args.weights)
    options = parse_options(args.option)
    size = (args.image_size,) * 2 if args.image_size else entry.default_input[:2]
    try:
        model = keras_cnn.build(args.model, input_shape=(*size, args.channels or entry.default_input[2]),
                                classes=2, name=name, **options)
    except (ValueError, TypeError) as error:
        if not options:
            raise
        raise (ValueError if isinstance(error, ValueError) else TypeError)(
            f"--option {', '.join(args.option)}: {error}") from error
    _check_precision(model)
    return model


def _check_precision(model):
    """Refuse before training what TensorFlow would fail on in the first step."""
    import keras

    policy = keras.mixed_precision.global_policy().name
    lrn = [layer.name for layer in model.layers if type(layer).__name__ == "LocalResponseNormalization"]
    if policy == "mixed_bfloat16" and lrn:
        raise ValueError(f"--mixed-precision on CPU computes in bfloat16, for which TensorFlow has no LRN kernel; "
                         f"{model.name} has LRN layers ({', '.join(lrn[:3])}); train it in float32 or on a GPU.")


def _resume_point(args, files, custom, chief):
    """The epoch a backup lets this run start at; a fresh run first clears the last run's backup and best (the
    chief only: the files are its own)."""
    import shutil

    from keras_cnn.app import fit_callbacks

    if not chief:
        return 0
    if not args.resume and os.path.isdir(files.backup):
        shutil.rmtree(files.backup)
    epoch = 0 if custom else fit_callbacks.resume_epoch(files.backup)
    if epoch == 0 and os.path.isfile(files.best):
        os.remove(files.best)  # a previous run's best must not stand in for this run's
    return epoch


def _announce(args, model, data, strategy, resume_from, custom):
    train = data["train"]
    counts = "/".join(str(data[role].count) for role in ("train", "val", "test"))
    skipped = f", {train.skipped} unreadable file(s) skipped" if train.skipped else ""
    print(f"{model.name}: {model.count_params():,} parameters, {len(model.outputs)} output(s); {args.data}: "
          f"{counts} train/val/test images, {len(train.class_names)} classes{skipped}")
    resuming = f"; resuming from the backup at epoch {resume_from}" if resume_from else ""
    print(f"{args.strategy} strategy, {strategy.num_replicas_in_sync} replica(s), "
          f"{'custom training loop' if custom else 'model.fit'}{resuming}", flush=True)


def _verbose(args):
    return args.verbose if args.verbose is not None else (1 if sys.stdout.isatty() else 2)


def _schedule(args, steps):
    from keras_cnn.app import recipes

    schedule = recipes.Schedule(args.schedule, args.learning_rate, args.step_epochs, args.step_factor,
                                args.decay_epochs, args.decay_rate)
    return recipes.learning_rate(schedule, steps, args.epochs)


def _callbacks(args, model, data, record, files, resume_from, chief, custom=False, replicas=1):
    from keras_cnn.app import fit_callbacks, pipeline, recipes

    # Keras 3.15's predict_on_batch under MirroredStrategy predicts the whole batch on every replica and
    # concatenates (twice the rows), so with several replicas the callback gets arrays and uses model.predict.
    validation = pipeline.arrays(data["val"], record) if replicas > 1 else \
        pipeline.evaluation(data["val"], record, batch_size=args.batch_size, cache=args.cache)
    monitor = fit_callbacks.resolve_monitor(args.monitor, model.output_names, custom)
    if not chief:  # the same logs on every worker (their stop decisions must agree), no files
        return [fit_callbacks.ValidationMetrics(validation, class_names=list(record.class_names))], monitor
    os.makedirs(files.folder, exist_ok=True)
    return fit_callbacks.standard(files, validation=validation, class_names=list(record.class_names),
                                  monitor=monitor, patience=args.patience, resume_from=resume_from, backup=not custom,
                                  progress_file=args.progress_file, tensorboard_dir=files.tensorboard), monitor


def _fit(args, model, data, record, recipe, strategy, files, resume_from, chief):
    from keras_cnn.app import pipeline, recipes

    targets = recipes.targets(model, len(record.class_names), args.label_smoothing)
    train = pipeline.training(data["train"], record, recipe, batch_size=args.batch_size, seed=args.seed,
                              targets=targets, cache=args.cache)
    validation = pipeline.evaluation(data["val"], record, batch_size=args.batch_size, targets=targets,
                                     cache=args.cache)
    steps = math.ceil(data["train"].count / args.batch_size)
    with strategy.scope():
        optimizer = recipes.optimizer(args.optimizer, _schedule(args, steps), momentum=args.momentum,
                                      weight_decay=args.weight_decay, nesterov=args.nesterov)
        model.compile(optimizer, jit_compile=args.xla,
                      **recipes.compile_kwargs(model, args.label_smoothing, args.aux_weight))
    callbacks, _ = _callbacks(args, model, data, record, files, resume_from, chief,
                              replicas=strategy.num_replicas_in_sync)
    history = model.fit(train, validation_data=validation, epochs=args.epochs, callbacks=callbacks,
                        verbose=_verbose(args), shuffle=False)
    return history, model, model.optimizer


def _custom(args, model, data, record, recipe, strategy, files, chief):
    from keras_cnn.app import distribute, pipeline, recipes

    steps = data["train"].count // args.batch_size
    if steps == 0:
        raise ValueError(f"--batch-size must be at most the {data['train'].count} training images for the custom "
                         f"loop (it drops partial batches); received {args.batch_size}.")
    targets = recipes.targets(model, len(record.class_names), args.label_smoothing)
    train = pipeline.training(data["train"], record, recipe, batch_size=args.batch_size, seed=args.seed,
                              targets=targets, cache=args.cache, repeat=True, drop_remainder=True)
    validation = pipeline.evaluation(data["val"], record, batch_size=args.batch_size, targets=targets,
                                     cache=args.cache)
    with strategy.scope():
        optimizer = recipes.optimizer(args.optimizer, _schedule(args, steps), momentum=args.momentum,
                                      weight_decay=args.weight_decay, nesterov=args.nesterov)
        if recipes.precision_policy(args.mixed_precision) == "mixed_float16":
            import keras

            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    weights = recipes.loss_weights(model, args.aux_weight)
    callbacks, _ = _callbacks(args, model, data, record, files, 0, chief, custom=True)
    twin = distribute.custom_fit(
        model, optimizer, losses=[recipes.loss(args.label_smoothing, reduction=None)] * len(model.outputs),
        weights=list(weights.values()), train=train, steps=steps, global_batch=args.batch_size,
        epochs=args.epochs, strategy=strategy, callbacks=callbacks, validation=validation,
        verbose=_verbose(args), jit_compile=args.xla)
    return twin.history, twin, optimizer


def _final(args, trained, files, chief):
    """The model to save: best (or last) weights, main output only, float32 (only the chief has the best)."""
    import keras

    import keras_cnn

    if args.final == "best" and chief and os.path.isfile(files.best):
        trained.load_weights(files.best)
    if keras.mixed_precision.global_policy().name != "float32":
        keras.mixed_precision.set_global_policy("float32")
        trained = keras_cnn.rebuild(trained, dtype="float32")
    return keras_cnn.inference_model(trained)
