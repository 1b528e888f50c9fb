"""Running out of memory as one line that says what was being done and what to lower.

TensorFlow raises ``tf.errors.ResourceExhaustedError`` (a GPU or an allocator limit) and Python ``MemoryError``
(a NumPy array of a whole split); both become :class:`OutOfMemory` (a ``MemoryError``), which the command line
prints as one line (``keras_cnn.cli``).
"""

import contextlib


class OutOfMemory(MemoryError):
    """Out of memory while doing something the message names, with the flags that would lower the need."""


@contextlib.contextmanager
def explained(doing, advice):
    """Inside the block, running out of memory raises :class:`OutOfMemory`: ``out of memory <doing> (<the
    error's first line>); <advice>.``"""
    import tensorflow as tf

    try:
        yield
    except OutOfMemory:
        raise
    except (MemoryError, tf.errors.ResourceExhaustedError) as error:
        raise OutOfMemory(f"out of memory {doing} ({_first_line(error)}); {advice}.") from error


def shape(size, channels):
    """``224x224x3`` for an input ``size`` (height, width) and ``channels``."""
    return f"{size[0]}x{size[1]}x{channels}"


def _first_line(error):
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    line = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return f"{type(error).__name__}: {line[:200]}"
