"""The backup of the custom training loop (``distribute.custom_fit``): what lets a killed run, one worker or the
whole cluster, resume where it was.

A ``tf.train.Checkpoint`` holds the model's variables (weights, BatchNorm statistics, random-generator states),
the optimizer's (its step count, so the learning-rate schedule goes on, and its slots) and the position: epoch,
step in that epoch, the steps an epoch has, and the epoch's running loss/accuracy sums (so a resumed epoch logs the
figures of all its steps). It is saved at every epoch's end and, with ``--backup-steps N``, every N optimizer
steps. Every worker takes part in each save (reading MultiWorkerMirroredStrategy's on-read variables is a
collective): the chief writes into the backup folder, which a ``tf.train.CheckpointManager`` keeps to the latest
checkpoint; the other workers write into a temporary folder of their own and delete it at once. On restart every
worker restores the chief's latest checkpoint, so all start from the same state.

The data position is not saved: the training stream (seeded shuffle, seeded augmentation) is the same sequence of
batches in every run, so :func:`fast_forward` skips the batches the backup's steps consumed. A checkpointed
iterator would hold the shuffle buffer (the whole split) and, under MultiWorkerMirroredStrategy, each worker's own
shard state, which the chief's checkpoint cannot carry for the others.
"""

import dataclasses
import os
import shutil
import tempfile

import numpy as np

# The checkpoint's keys of the position, [epoch, step, steps per epoch], and of the epoch's running sums.
POSITION_KEY, TOTALS_KEY = "position/.ATTRIBUTES/VARIABLE_VALUE", "totals/.ATTRIBUTES/VARIABLE_VALUE"
NO_TOTALS = (0.0, 0.0, 0.0, 0.0)  # the sums of loss, right decisions, decisions and images


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a backup lets training start: ``epoch`` (0-based) at ``step`` of its ``steps``, with the running
    ``totals`` (:data:`NO_TOTALS`' sums) of the steps already done in that epoch."""

    epoch: int = 0
    step: int = 0
    steps: int = 0
    totals: tuple = NO_TOTALS

    @property
    def done(self):
        """Optimizer steps (global batches) the backup holds."""
        return self.epoch * self.steps + self.step

    def describe(self):
        """For messages: "step S/M of epoch E" (epochs counted from 1, as Keras prints them) or "the end of
        epoch E"."""
        if not self.step:
            return f"the end of epoch {self.epoch}"
        return f"step {self.step}/{self.steps} of epoch {self.epoch + 1}"


def latest(directory):
    """The path of the latest checkpoint in ``directory``, or None."""
    import tensorflow as tf

    return tf.train.latest_checkpoint(directory) if os.path.isdir(directory) else None


def position(directory):
    """The ``Position`` of the latest checkpoint in ``directory`` (``Position()`` without one), read from the
    checkpoint itself: no side file can disagree with it."""
    import tensorflow as tf

    path = latest(directory)
    if path is None:
        return Position()
    reader = tf.train.load_checkpoint(path)
    epoch, step, steps = (int(v) for v in reader.get_tensor(POSITION_KEY))
    totals = tuple(float(v) for v in reader.get_tensor(TOTALS_KEY))
    return Position(epoch, step, steps, totals)


def discard(directory):
    """Delete the backup (the chief, when training ended or ``--no-resume`` asked)."""
    if os.path.isdir(directory):
        shutil.rmtree(directory)


def fast_forward(dataset, done):
    """``dataset`` (global batches) without its first ``done`` batches: where the backed-up run was. The skipped
    batches go through the input pipeline (not the model), so the shuffle and augmentation states advance as they
    did."""
    return dataset.skip(done) if done else dataset


class LoopBackup:
    """Saves and restores the custom loop's state in ``directory`` (the chief's, shared by all workers).

    ``model``/``optimizer``: built under the strategy's scope; ``chief``: whether this worker writes the backup;
    ``steps``: steps per epoch (a backup made with another count is refused, its position would mean other data);
    ``every``: save every this many optimizer steps too (0: epoch ends only).
    """

    def __init__(self, directory, *, model, optimizer, chief, steps, every=0):
        import tensorflow as tf

        self.directory, self.chief, self.steps, self.every = directory, chief, steps, every
        # Plain (not mirrored) variables: every worker sets the same values before each save.
        self._position = tf.Variable(np.zeros(3, np.int64), trainable=False, name="position")
        self._totals = tf.Variable(np.zeros(len(NO_TOTALS), np.float64), trainable=False, name="totals")
        # Variables by position in lists, not Keras's attribute graph: the same command builds the same lists.
        self._checkpoint = tf.train.Checkpoint(model=list(model.variables), optimizer=list(optimizer.variables),
                                               position=self._position, totals=self._totals)
        self._manager = tf.train.CheckpointManager(self._checkpoint, directory, max_to_keep=1) if chief else None

    def restore(self):
        """Restore the latest checkpoint (every worker, the same one) and return its ``Position``; ``Position()``
        with nothing restored when there is none."""
        path = latest(self.directory)
        if path is None:
            return Position(steps=self.steps)
        start = position(self.directory)
        if start.steps != self.steps:
            raise ValueError(f"the backup in {self.directory} was made with {start.steps} steps per epoch; this run "
                             f"has {self.steps} (--batch-size, --limit or the data changed); rerun with the backed-up "
                             f"run's flags, or pass --no-resume to discard it.")
        self._checkpoint.restore(path).assert_existing_objects_matched()
        return start

    def due(self, epoch, step):
        """Whether step ``step`` (1-based) of ``epoch`` ends with a step backup (an epoch's last step is backed up
        with the epoch)."""
        done = epoch * self.steps + step
        return bool(self.every) and step < self.steps and done % self.every == 0

    def save(self, epoch, step, totals=NO_TOTALS):
        """Back up the state after ``step`` steps of ``epoch`` (``step`` 0: at its start). Every worker calls it at
        the same points; only the chief's copy stays."""
        self._position.assign([epoch, step, self.steps])
        self._totals.assign(np.asarray(totals, np.float64))
        number = epoch * self.steps + step
        if self.chief:
            self._manager.save(checkpoint_number=number)
            return
        scratch = tempfile.mkdtemp(prefix="keras_cnn_backup_")  # the worker's own disk: nothing shared to race on
        try:
            self._checkpoint.write(os.path.join(scratch, f"ckpt-{number}"))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
