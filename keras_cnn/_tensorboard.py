"""TensorBoard scalars written with TensorFlow alone: the one writer for ``ClassificationMetrics`` (its values)
and ``keras-cnn train`` (the epoch logs, when the ``tensorboard`` package is not installed)."""

import os

from keras_cnn import _compat


class ScalarWriter:
    """Appends ``{name: value}`` scalars at a step to an event file in ``log_dir`` (created on the first write)."""

    def __init__(self, log_dir):
        self.log_dir = os.fspath(log_dir)
        self._writer = None

    def write(self, values, step, prefix=""):
        """Each value as the float32 scalar ``prefix + name`` at ``step``, flushed at once."""
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        # tf.summary.scalar needs the tensorboard package; this metadata writes the same record without it
        metadata = _compat.scalar_summary_metadata()
        with self._writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.write(prefix + name, tf.constant(float(value), tf.float32), metadata=metadata)
        self._writer.flush()

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
