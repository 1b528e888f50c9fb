"""Argument checks shared by every public entry point.

Each check raises a ``ValueError`` or ``TypeError`` that names the argument, the allowed values and what was
received, so a user mistake never surfaces as a traceback from deep inside TensorFlow.
"""

import numbers
import os


def check_bool(name, value):
    """Return ``value`` if it is a ``bool``; raise ``TypeError`` otherwise."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; received {value!r} ({type(value).__name__}).")
    return value


def check_int(name, value, minimum=None, maximum=None):
    """Return ``value`` if it is an integer (not a bool) inside ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; received {value!r} ({type(value).__name__}).")
    _check_range(name, value, minimum, maximum)
    return int(value)


def check_float(name, value, minimum=None, maximum=None):
    """Return ``float(value)`` if it is a real number inside ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number; received {value!r} ({type(value).__name__}).")
    _check_range(name, value, minimum, maximum)
    return float(value)


def check_rate(name, value):
    """Return ``float(value)`` if it is a probability in ``[0, 1)``: a dropout, drop-path or drop-connect rate
    (1 would drop everything, and drop path divides by ``1 - rate``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1); received {value!r} ({type(value).__name__}).")
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1); received {value!r}.")
    return float(value)


def check_choice(name, value, allowed):
    """Return ``value`` if it is one of ``allowed``; the error lists the allowed values."""
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {choices}; received {value!r}.")
    return value


def check_activation(name, value, allow_none=False):
    """Return ``value`` if it is a callable or a name Keras resolves as an activation."""
    import keras

    if value is None and allow_none:
        return value
    if callable(value):
        return value
    if isinstance(value, str):
        try:
            keras.activations.get(value)
            return value
        except ValueError:
            pass
    allowed = "None, " if allow_none else ""
    raise ValueError(
        f"{name} must be {allowed}a callable or a Keras activation name such as 'softmax', 'sigmoid', "
        f"'relu', 'tanh', 'linear'; received {value!r}."
    )


def check_model(value, name="model"):
    """Return ``value`` if it is a ``keras.Model``."""
    import keras

    if not isinstance(value, keras.Model):
        raise TypeError(f"{name} must be a keras.Model; received {type(value).__name__}.")
    return value


def check_path(name, value):
    """Return ``os.fspath(value)`` if ``value`` is a ``str`` or ``os.PathLike``."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike); received {value!r} ({type(value).__name__}).")
    return os.fspath(value)


def _check_range(name, value, minimum, maximum):
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; received {value!r}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}; received {value!r}.")
