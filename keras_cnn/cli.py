"""The ``keras-cnn`` command line: ``keras-cnn train | evaluate | predict | export | profile | convert-weights``
(``apps/*.py`` are the same).

Each command lives in ``keras_cnn.app.<command>`` (dashes as underscores); this module dispatches and turns a
user mistake (a ``ValueError``, ``TypeError`` or missing file raised with a message naming the flag), an output
path it cannot write and running out of memory into a one-line error instead of a traceback, and Ctrl-C into one
line and exit status 130.
"""

import ast
import errno
import importlib
import re
import sys

COMMANDS = ("train", "evaluate", "predict", "export", "profile", "convert-weights")
# An OSError of these kinds (or errnos) is about a path the user gave (an output folder that is read-only, not a
# folder, too long) and names it; MemoryError is keras_cnn.app.memory's, naming the sizes to lower.
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, PermissionError, NotADirectoryError,
               IsADirectoryError, MemoryError)
PATH_ERRNOS = (errno.ENAMETOOLONG, errno.EROFS, errno.ENOSPC)
INTERRUPTED = 130  # the shell's exit status for a process ended by Ctrl-C (128 + SIGINT)


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
    except KeyboardInterrupt as error:
        print(_interrupted(argv, error), file=sys.stderr, flush=True)
        raise SystemExit(INTERRUPTED) from None
    except OSError as error:
        if not isinstance(error, USER_ERRORS) and error.errno not in PATH_ERRNOS:
            raise
        raise SystemExit(f"keras-cnn {argv[0]}: error: {_os_message(error)}") from error
    except USER_ERRORS as error:
        raise SystemExit(f"keras-cnn {argv[0]}: error: {str(error) or type(error).__name__}") from error
    return 0


def _os_message(error):
    """The message without Python's ``[Errno N]`` prefix (the words say it)."""
    return re.sub(r"^\[Errno \d+\] ", "", str(error))


def _interrupted(argv, error):
    """One line for Ctrl-C: what the command says about it (train: where its backup is) and, when the same
    command resumes, the command."""
    line = f"keras-cnn {argv[0]}: interrupted" + (f"; {error}" if str(error) else "")
    if getattr(error, "resumable", False):
        line += f"; resume with: keras-cnn {error.resume_command(argv)}"
    return line


if __name__ == "__main__":
    main()
