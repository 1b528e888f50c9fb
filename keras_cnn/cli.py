"""The ``keras-cnn`` command line: ``keras-cnn train | evaluate | predict | export | profile | convert-weights``
(``apps/*.py`` are the same).

Each command lives in ``keras_cnn.app.<command>`` (dashes as underscores); this module dispatches and turns a
user mistake (a ``ValueError``, ``TypeError`` or missing file raised with a message naming the flag) into a
one-line error instead of a traceback.
"""

import ast
import importlib
import sys

COMMANDS = ("train", "evaluate", "predict", "export", "profile", "convert-weights")
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError)


def parse_options(pairs):
    """``["pool=max", "batch_norm=True"]`` -> ``{"pool": "max", "batch_norm": True}`` (values as Python literals)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option must be KEY=VALUE; received {pair!r}.")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


def command(name):
    """The module of a command (``parser()``, ``run(args)``, ``main(argv)``)."""
    return importlib.import_module(f"keras_cnn.app.{name.replace('-', '_')}")


def main(argv=None):
    """Entry point of ``keras-cnn``; returns 0 or exits with the error's message."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        raise SystemExit(f"usage: keras-cnn {{{','.join(COMMANDS)}}} [--help]; received {argv[:1] or 'nothing'}")
    module = command(argv[0])
    args = module.parser().parse_args(argv[1:])
    try:
        module.run(args)
    except USER_ERRORS as error:
        raise SystemExit(f"keras-cnn {argv[0]}: error: {error}") from error
    return 0


if __name__ == "__main__":
    main()
