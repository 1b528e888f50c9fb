"""Train a registered model with model.fit: data, recipe, callbacks, resume, distribution; a summary at the end.

Writes ``<output>/<name>.keras`` (the deployable model: auxiliary heads dropped, float32),
``<output>/<name>.preprocessing.json`` (what evaluate, predict and export feed it) and, under
``<output>/<name>_train/``, ``history.csv``, ``best.weights.h5`` (best by --monitor), ``backup/`` (deleted when
training ends; run the same command again after an interruption to resume) and ``tensorboard/``.
Example: ``keras-cnn train --model lenet5 --option pool=max --translate 0.08 --rotate 0.03``.
From Python, without argparse: ``run(TrainConfig(model="lenet5", epochs=1, output="out"))`` (``TrainConfig`` from
``keras_cnn.app.train_config``: one field per flag, named as its argparse dest).
"""

import argparse
import math
import os
import sys
import time

from keras_cnn.app import flags
from keras_cnn.app.train_config import Run, RunFiles, TrainConfig

LOOPS = ("auto", "fit", "custom")


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
    """Train as ``args`` says (a ``TrainConfig``, or the ``argparse.Namespace`` of ``parser()``); returns a dict
    of the summary (test accuracy, epochs, files...)."""
    from keras_cnn.app import distribute

    config = args if isinstance(args, TrainConfig) else TrainConfig.from_args(args)
    started = time.perf_counter()
    strategy = distribute.create(config.strategy, config.devices)  # before any other TensorFlow work
    import keras

    policy = keras.mixed_precision.global_policy()
    try:
        return _train(config, strategy, started)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _train(config, strategy, started):
    import keras

    from keras_cnn import registry
    from keras_cnn.app import distribute, fit_callbacks, preprocessing, recipes, train_summary

    _, chief = distribute.task()
    keras.mixed_precision.set_global_policy(recipes.precision_policy(config.mixed_precision))
    entry = registry.get(config.model)
    keras.utils.set_random_seed(config.seed)  # the model's initial weights are the first build's
    first = _first_build(config, entry)
    fit_callbacks.resolve_monitor(config.monitor, first.output_names, config.custom_loop)
    data, record, recipe = _data(config, entry)
    files = RunFiles.of(config)
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = _build(config, record, first)
    resume_from = _resume_point(config, files, chief)
    run = Run(strategy, chief, config.custom_loop, files, data, record, recipe, resume_from, started)
    _announce(config, run, model)
    history, trained, optimizer = (_custom if run.custom else _fit)(config, run, model)
    outcome = train_summary.Outcome(history, fingerprint=distribute.fingerprint(trained),  # equal on every worker
                                    optimizer_steps=int(optimizer.iterations.numpy()))  # all epochs', resumed or not
    final = _final(config, run, trained)
    if chief:
        final.save(files.model)
        preprocessing.save(record, files.record)
    return train_summary.finish(config, run, final, outcome)


def _data(config, entry):
    from keras_cnn.app import augment, pipeline, preprocessing, sources

    height, width = (config.image_size,) * 2 if config.image_size else entry.default_input[:2]
    channels = config.channels or entry.default_input[2]
    source = sources.parse(config.data, seed=config.seed, val_fraction=config.val_fraction,
                           test_fraction=config.test_fraction, data_dir=config.data_dir, download=config.download)
    jitter = config.scale_jitter
    eval_side = (sum(jitter) // 2 if jitter else config.random_crop) or None
    stored = (jitter[1],) * 2 if jitter else (eval_side,) * 2 if eval_side else (height, width)
    data = sources.load(source, ("train", "val", "test"), size=stored, channels=channels, limit=config.limit)
    normalization = preprocessing.resolve_normalization(config.normalization, entry.family)
    recipe = augment.Recipe(crop=bool(config.random_crop), scale_jitter=jitter, flip=config.flip,
                            pca_noise=config.pca_noise, translate=config.translate, rotate=config.rotate)
    needs_sample = normalization in ("mean", "standardize") or recipe.pca_noise > 0
    sample = _sample(data["train"], pipeline) if needs_sample else None
    record = preprocessing.create((height, width, channels), data["train"].class_names, normalization=normalization,
                                  images=sample, resize=(eval_side,) * 2 if eval_side else None,
                                  model=config.stem, data=source.to_json())
    return data, record, recipe.with_pca(sample) if sample is not None else recipe


def _sample(split, pipeline, count=2000):
    import dataclasses

    return pipeline.arrays(dataclasses.replace(split, dataset=split.dataset.take(count)))[0]


def _build(config, record, first):
    """The model to train: the first build with the data's class count (a new head if it differs)."""
    import keras_cnn

    model = keras_cnn.rebuild(first, classes=len(record.class_names))
    if config.weights:
        model.load_weights(config.weights)
    return model


def _first_build(config, entry):
    """Build the model before the data loads (which sets its class count), so that a bad --option, or a model
    --mixed-precision cannot train, fails at once; the epoch logs' keys follow its output names."""
    import keras_cnn
    from keras_cnn.cli import parse_options

    from keras_cnn import _head

    _head.check_weights(config.weights)
    options = parse_options(config.option)
    size = (config.image_size,) * 2 if config.image_size else entry.default_input[:2]
    try:
        model = keras_cnn.build(config.model, input_shape=(*size, config.channels or entry.default_input[2]),
                                classes=2, name=config.stem, **options)
    except (ValueError, TypeError) as error:
        if not options:
            raise
        raise (ValueError if isinstance(error, ValueError) else TypeError)(
            f"--option {', '.join(config.option)}: {error}") from error
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


def _resume_point(config, files, chief):
    """The epoch a backup lets this run start at; a fresh run first clears the last run's backup and best (the
    chief only: the files are its own)."""
    import shutil

    from keras_cnn.app import fit_callbacks

    if not chief:
        return 0
    if not config.resume and os.path.isdir(files.backup):
        shutil.rmtree(files.backup)
    epoch = 0 if config.custom_loop else fit_callbacks.resume_epoch(files.backup)
    if epoch == 0 and os.path.isfile(files.best):
        os.remove(files.best)  # a previous run's best must not stand in for this run's
    return epoch


def _announce(config, run, model):
    train = run.data["train"]
    counts = "/".join(str(run.data[role].count) for role in ("train", "val", "test"))
    skipped = f", {train.skipped} unreadable file(s) skipped" if train.skipped else ""
    print(f"{model.name}: {model.count_params():,} parameters, {len(model.outputs)} output(s); {config.data}: "
          f"{counts} train/val/test images, {len(train.class_names)} classes{skipped}")
    resuming = f"; resuming from the backup at epoch {run.resume_from}" if run.resume_from else ""
    print(f"{config.strategy} strategy, {run.strategy.num_replicas_in_sync} replica(s), "
          f"{'custom training loop' if run.custom else 'model.fit'}{resuming}", flush=True)


def _verbose(config):
    return config.verbose if config.verbose is not None else (1 if sys.stdout.isatty() else 2)


def _optimizer(config, steps):
    """The optimizer of --optimizer with the --schedule over ``steps`` per epoch (create it in the strategy's
    scope)."""
    from keras_cnn.app import recipes

    schedule = recipes.Schedule(config.schedule, config.learning_rate, config.step_epochs, config.step_factor,
                                config.decay_epochs, config.decay_rate)
    return recipes.optimizer(config.optimizer, recipes.learning_rate(schedule, steps, config.epochs),
                             momentum=config.momentum, weight_decay=config.weight_decay, nesterov=config.nesterov)


def _inputs(config, run, model, **training):
    """The training and validation datasets, with the model's targets (``training``: the loop's batching)."""
    from keras_cnn.app import pipeline, recipes

    targets = recipes.targets(model, len(run.record.class_names), config.label_smoothing)
    train = pipeline.training(run.data["train"], run.record, run.recipe, batch_size=config.batch_size,
                              seed=config.seed, targets=targets, cache=config.cache, **training)
    validation = pipeline.evaluation(run.data["val"], run.record, batch_size=config.batch_size, targets=targets,
                                     cache=config.cache)
    return train, validation


def _callbacks(config, run, model):
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
        return [fit_callbacks.ValidationMetrics(validation, class_names=class_names)]
    os.makedirs(run.files.folder, exist_ok=True)
    return fit_callbacks.standard(run.files, validation=validation, class_names=class_names, monitor=monitor,
                                  patience=config.patience, resume_from=run.resume_from, backup=not run.custom,
                                  progress_file=config.progress_file, tensorboard_dir=run.files.tensorboard)


def _fit(config, run, model):
    from keras_cnn.app import recipes

    train, validation = _inputs(config, run, model)
    steps = math.ceil(run.data["train"].count / config.batch_size)
    with run.strategy.scope():
        optimizer = _optimizer(config, steps)
        model.compile(optimizer, jit_compile=config.xla,
                      **recipes.compile_kwargs(model, config.label_smoothing, config.aux_weight))
    history = model.fit(train, validation_data=validation, epochs=config.epochs,
                        callbacks=_callbacks(config, run, model), verbose=_verbose(config), shuffle=False)
    return history, model, model.optimizer


def _custom(config, run, model):
    from keras_cnn.app import distribute, recipes

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
    twin = distribute.custom_fit(
        model, optimizer, losses=[recipes.loss(config.label_smoothing, reduction=None)] * len(model.outputs),
        weights=list(weights.values()), train=train, steps=steps, global_batch=config.batch_size,
        epochs=config.epochs, strategy=run.strategy, callbacks=_callbacks(config, run, model),
        validation=validation, verbose=_verbose(config), jit_compile=config.xla)
    return twin.history, twin, optimizer


def _final(config, run, trained):
    """The model to save: best (or last) weights, main output only, float32 (only the chief has the best)."""
    import keras

    import keras_cnn

    if config.final == "best" and run.chief and os.path.isfile(run.files.best):
        trained.load_weights(run.files.best)
    if keras.mixed_precision.global_policy().name != "float32":
        keras.mixed_precision.set_global_policy("float32")
        trained = keras_cnn.rebuild(trained, dtype="float32")
    return keras_cnn.inference_model(trained)
