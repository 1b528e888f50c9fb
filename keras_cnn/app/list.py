"""The registered models: name, family and default input (height x width x channels), as keras_cnn.list_models.

PATTERN is a shell-style wildcard (``resnet*``, ``vgg1?_bn``; case-insensitive). ``--parameters`` adds each
listed model's trainable parameter count at its defaults (1,000 classes unless the model says otherwise), which
builds the listed models (seconds for a large one, minutes for the whole registry), so it is asked for, not
default. Examples:
``keras-cnn list``, ``keras-cnn list "resnet*" --parameters``.
"""

import argparse
import difflib


def parser():
    p = argparse.ArgumentParser(prog="keras-cnn list", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pattern", nargs="?", metavar="PATTERN",
                   help="shell-style wildcard of model names, quoted against the shell (default: every model)")
    p.add_argument("--parameters", action="store_true",
                   help="also count each listed model's trainable parameters (builds each listed model)")
    return p


def main(argv=None):
    return run(parser().parse_args(argv))


def run(args):
    """Print the table; returns its rows as dicts (``name``, ``family``, ``input``, and ``parameters``)."""
    rows = [_row(name, args.parameters) for name in _names(args.pattern)]
    _print(rows)
    return rows


def _names(pattern):
    """The model names matching ``pattern`` (from :mod:`keras_cnn.catalog`: no TensorFlow); none is a
    ``ValueError`` naming the closest."""
    from keras_cnn import catalog

    names = catalog.names(pattern)
    if not names:
        hint = _hint(pattern, catalog.names())
        raise ValueError(f"PATTERN must match a registered model name (a shell-style wildcard such as 'resnet*'); "
                         f"received {pattern!r}{hint}.")
    return names


def _hint(pattern, names):
    """``pattern*`` when that matches (a bare prefix), else the closest names."""
    prefixed = [n for n in names if n.startswith(pattern.lower())]
    if prefixed:
        return f"; {pattern + '*'!r} matches {len(prefixed)}"
    close = difflib.get_close_matches(pattern.lower(), names, n=3, cutoff=0.6)
    return f"; closest: {', '.join(close)}" if close else ""


def _row(name, parameters):
    from keras_cnn.catalog import MODELS

    family, default_input = MODELS[name]
    row = {"name": name, "family": family, "input": "x".join(map(str, default_input))}
    if parameters:
        row["parameters"] = trainable_parameters(name)
    return row


def trainable_parameters(name):
    """Trainable parameters of ``keras_cnn.build(name)`` (torchvision's and the papers' figure: BatchNorm moving
    statistics not counted). Built in a ``keras.StatelessScope`` so the weights are shaped, never initialised."""
    import keras
    import numpy as np

    from keras_cnn import registry

    with keras.StatelessScope():
        model = registry.build(name)
        count = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    keras.backend.clear_session()  # a long listing does not keep every graph
    return count


def _print(rows):
    from keras_cnn.app import report

    headers = list(rows[0])
    print(report.table(headers, [[f"{v:,}" if isinstance(v, int) else v for v in row.values()] for row in rows],
                       left=(0, 1)))
    print(f"{len(rows)} model(s)", flush=True)
