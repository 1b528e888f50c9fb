"""What one ``keras-cnn train`` run is asked to do (``TrainConfig``) and what it derives on the way (``Run``).

``TrainConfig`` is frozen and built once: ``TrainConfig.from_args(parser().parse_args(argv))`` on the command
line, or ``TrainConfig(model="lenet5", epochs=1, ...)`` from Python. Its fields are the flags' argparse dests
(``--batch-size`` is ``batch_size``, ``--option`` is ``option``, ``--no-resume`` is ``resume``) with the flags'
defaults; building one checks what depends on several flags or on the model (the flags' types check each value).
``Run`` holds what the run derived from it (strategy, chief, loop, files, data, record, recipe, resume epoch) and
``RunFiles`` where it writes.
"""

import dataclasses
import os

TASKS = ("multiclass", "multilabel")
THRESHOLD_RULES = ("f1", "break_even")  # keras_cnn.thresholds.RULES


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The settings of a training run, one field per ``keras-cnn train`` flag (see ``--help``)."""

    # model
    model: str = "lenet5"
    option: tuple[str, ...] = ()  # KEY=VALUE, as given to --option
    name: str | None = None
    task: str = "auto"  # "auto" becomes the data's task when the config is built (see _resolve)
    threshold_rule: str = "f1"
    weights: str | None = None
    image_size: int | None = None
    channels: int | None = None
    # data
    data: str = "digits"
    data_dir: str | None = None
    download: bool = False
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    limit: int | None = None
    cache: str = "auto"
    max_pixels: int | None = None  # None: keras_cnn._images.MAX_PIXELS
    # preprocessing and augmentation
    normalization: str = "auto"
    random_crop: int | None = None
    scale_jitter: tuple[int, int] | None = None
    flip: bool = False
    pca_noise: float = 0.0
    translate: float = 0.0
    rotate: float = 0.0
    # optimisation
    optimizer: str = "adam"
    learning_rate: float = 3e-3
    schedule: str = "cosine"
    step_epochs: int = 30
    step_factor: float = 0.1
    decay_epochs: float = 2.0
    decay_rate: float = 0.94
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    aux_weight: float = 0.3
    recalibrate_bn: bool = False
    freeze_backbone: int = 0
    fine_tune_learning_rate: float | None = None
    epochs: int = 40
    batch_size: int = 32
    mixed_precision: bool = False
    xla: bool = False
    loop: str = "auto"
    # run
    output: str = "saved_models"
    seed: int = 0
    resume: bool = True
    backup_steps: int = 0
    final: str = "best"
    patience: int = 0
    monitor: str = "auto"
    strategy: str = "default"
    devices: int = 2
    verbose: int | None = None
    progress_file: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "option", tuple(self.option))
        if self.scale_jitter is not None:
            object.__setattr__(self, "scale_jitter", tuple(self.scale_jitter))
        self._resolve()
        self._check()

    def _resolve(self):
        """--task auto: the data's task (multi-label sources train multilabel); --monitor auto: val_accuracy, or
        val_f1_micro for multilabel (an accuracy per label rewards predicting every rare label absent)."""
        from keras_cnn import _validate, data

        _validate.check_choice("--task", self.task, ("auto", *TASKS))
        _validate.check_choice("--threshold-rule", self.threshold_rule, THRESHOLD_RULES)
        multilabel_data = data.parse_source(self.data, "--data").kind in data.MULTILABEL_KINDS
        if self.task == "auto":
            object.__setattr__(self, "task", "multilabel" if multilabel_data else "multiclass")
        if self.task == "multiclass" and multilabel_data:
            raise ValueError(f"--data {self.data} is multi-label (any number of labels per image); train it with "
                             f"--task multilabel or auto; received --task multiclass.")
        if self.task == "multilabel" and not multilabel_data:
            raise ValueError(f"--task multilabel needs multi-label --data (multilabel-digits, or listing:PATH with "
                             f"a CSV/JSON listing of images and their labels); received --data {self.data}.")
        if self.monitor == "auto":
            object.__setattr__(self, "monitor", "val_f1_micro" if self.task == "multilabel" else "val_accuracy")

    @property
    def multilabel(self):
        return self.task == "multilabel"

    @classmethod
    def from_args(cls, args):
        """The config of an ``argparse.Namespace`` from ``keras_cnn.app.train.parser()``."""
        values = vars(args)
        return cls(**{field.name: values[field.name] for field in dataclasses.fields(cls)})

    @property
    def stem(self):
        """The name of the saved model and of its files: --name, else --model."""
        return self.name or self.model

    @property
    def custom_loop(self):
        """Whether the run uses the custom training loop (``--loop auto`` picks it for multiworker)."""
        return self.loop == "custom" or (self.loop == "auto" and self.strategy == "multiworker")

    def _check(self):
        from keras_cnn import registry

        entry = registry.get(self.model)
        if self.random_crop and self.scale_jitter:
            raise ValueError(f"--random-crop and --scale-jitter both choose the crop; pass one; received "
                             f"--random-crop {self.random_crop} and --scale-jitter {self.scale_jitter}.")
        if self.image_size is not None and self.image_size < entry.min_input:
            raise ValueError(f"--image-size must be at least {entry.min_input} for model {entry.name!r} (its "
                             f"smallest input); received {self.image_size}.")
        size = self.image_size or entry.default_input[0]
        for flag, side in (("--random-crop", self.random_crop), ("--scale-jitter", (self.scale_jitter or [None])[0])):
            if side is not None and side < size:
                raise ValueError(f"{flag} must be at least the input size {size}; received {side}.")
        if self.backup_steps and not self.custom_loop:
            raise ValueError(f"--backup-steps backs up the custom loop (--strategy multiworker or --loop custom); "
                             f"model.fit backs up at each epoch's end (BackupAndRestore); received --backup-steps "
                             f"{self.backup_steps} with --strategy {self.strategy} --loop {self.loop}.")
        if self.loop == "fit" and self.strategy == "multiworker":
            raise ValueError("--loop fit cannot run under --strategy multiworker in Keras 3.15 "
                             "(keras-team/keras#20585); use --loop custom or auto.")
        self._check_freeze()

    def _check_freeze(self):
        frozen = self.freeze_backbone
        if self.fine_tune_learning_rate is not None and not frozen:
            raise ValueError(f"--fine-tune-learning-rate is the rate after --freeze-backbone N epochs; received "
                             f"--fine-tune-learning-rate {self.fine_tune_learning_rate} without --freeze-backbone.")
        if not frozen:
            return
        if frozen >= self.epochs:
            raise ValueError(f"--freeze-backbone must be less than --epochs {self.epochs} (N epochs of the classifier "
                             f"alone, then every layer until --epochs); received {frozen}.")
        if not self.weights:
            raise ValueError(f"--freeze-backbone {frozen} trains a new classifier on a trained trunk: pass --weights "
                             "(an upstream checkpoint or a .weights.h5); received no --weights.")
        if self.custom_loop:
            raise ValueError(f"--freeze-backbone needs model.fit (its two phases resume through BackupAndRestore, "
                             f"which the custom loop of multiworker training does not use); received --loop "
                             f"{self.loop} with --strategy {self.strategy}.")


def _inside(name):
    """A property: the path of ``name`` in the run's folder."""
    return property(lambda files: os.path.join(files.folder, name))


@dataclasses.dataclass(frozen=True)
class RunFiles:
    """Where one training run writes (``folder`` is ``<output>/<name>_train``)."""

    model: str
    record: str
    folder: str

    log = _inside("history.csv")
    best = _inside("best.weights.h5")
    backup = _inside("backup")
    tensorboard = _inside("tensorboard")

    @classmethod
    def of(cls, config):
        return cls(os.path.join(config.output, f"{config.stem}.keras"),
                   os.path.join(config.output, f"{config.stem}.preprocessing.json"),
                   os.path.join(config.output, f"{config.stem}_train"))


@dataclasses.dataclass(frozen=True)
class Run:
    """What a run derived from its config before training: the ``tf.distribute`` strategy, whether this process is
    the chief (it alone writes files), whether it uses the custom loop, its files, the data splits
    (``sources.load``), the preprocessing record, the augmentation recipe, the epoch a backup lets it start at,
    and when it started (``time.perf_counter()``)."""

    strategy: object
    chief: bool
    custom: bool
    files: RunFiles
    data: dict
    record: object
    recipe: object
    resume_from: int
    started: float
