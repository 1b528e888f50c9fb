"""The keras-cnn command line: keras-cnn COMMAND [flags], one command per line of SUMMARIES (apps/*.py are the
same commands); keras-cnn --help (-h, help) lists them, keras-cnn help COMMAND (or COMMAND --help) gives a command's
flags and keras-cnn --version its version.

Each command lives in ``keras_cnn.app.<command>`` (dashes as underscores); this module dispatches and turns a
user mistake (a ``ValueError``, ``TypeError`` or missing file raised with a message naming the flag), an output
path it cannot write and running out of memory into a one-line error instead of a traceback, and Ctrl-C into one
line and exit status 130.
"""

import ast
import difflib
import errno
import importlib
import re
import sys

# One line per command for keras-cnn --help, written here rather than read from the command modules: listing the
# commands imports none of them.
SUMMARIES = {
    "train": "train a registered model on digits, an image folder or a tfds dataset; writes .keras and a report",
    "evaluate": "evaluate a .keras model or an export: a metrics table, PR/ROC/confusion plots, a JSON report",
    "predict": "top-k classes for image files or folders, from a .keras model or an export",
    "export": "export to SavedModel (TF Serving), TFLite (LiteRT) and ONNX, each verified in its runtime",
    "profile": "per-layer output shape, parameters, MACs and activation memory of a registered model",
    "convert-weights": "convert a torchvision, timm or keras.applications checkpoint into keras_cnn files",
    "list": "registered models matching a pattern: name, family, default input (and parameters)",
}
COMMANDS = tuple(SUMMARIES)
# An OSError of these kinds (or errnos) is about a path the user gave (an output folder that is read-only, not a
# folder, too long) and names it; MemoryError is keras_cnn.app.memory's, naming the sizes to lower.
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, PermissionError, NotADirectoryError,
               IsADirectoryError, MemoryError)
PATH_ERRNOS = (errno.ENAMETOOLONG, errno.EROFS, errno.ENOSPC)
INTERRUPTED = 130  # the shell's exit status for a process ended by Ctrl-C (128 + SIGINT)
HELP = ("help", "--help", "-h")
USAGE_ERROR = 2  # argparse's exit status for a usage error


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


def parser(name):
    """The argument parser of command ``name``, its help shown as plain text (:func:`keras_cnn.app.flags.plain`)."""
    from keras_cnn.app import flags

    return flags.plain(command(name).parser())


def usage():
    """The top-level usage: every command with its one-line summary."""
    width = max(map(len, COMMANDS)) + 2
    lines = ["usage: keras-cnn COMMAND [flags]    (keras-cnn help COMMAND, or COMMAND --help: its flags)", "",
             "commands:"]
    lines += [f"  {name:<{width}}{summary}" for name, summary in SUMMARIES.items()]
    lines += ["", "options:", f"  {'-h, --help':<{width}}this list (also: keras-cnn help)",
              f"  {'--version':<{width}}print keras-cnn's version and exit"]
    return "\n".join(lines)


def version():
    """``keras_cnn.__version__`` (the package is imported with this module), else the installed metadata."""
    package = sys.modules.get("keras_cnn")
    if getattr(package, "__version__", None):
        return package.__version__
    from importlib import metadata

    return metadata.version("keras_cnn")


def main(argv=None):
    """Entry point of ``keras-cnn``; returns 0 or exits with the error's message."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--version"]:
        print(f"keras-cnn {version()}")
        return 0
    if argv[:1] and argv[0] in HELP:
        return _help(argv[1:])
    if not argv or argv[0] not in COMMANDS:
        _usage_error(argv[0] if argv else None)
    module = command(argv[0])
    args = parser(argv[0]).parse_args(argv[1:])
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


def _help(names):
    """``keras-cnn help``: the usage; ``keras-cnn help COMMAND``: that command's flags (exit 0)."""
    if not names:
        print(usage())
        return 0
    if names[0] not in COMMANDS or len(names) > 1:
        _usage_error(" ".join(names), what="help COMMAND")
    parser(names[0]).print_help()
    return 0


def _usage_error(received, what="command"):
    """Usage on stderr, then what was wrong and the closest command names; exit status 2 as argparse's."""
    if received is None:
        message = f"keras-cnn: error: a command is needed; one of {', '.join(COMMANDS)}"
    else:
        close = difflib.get_close_matches(received.split(" ")[0], COMMANDS, n=3, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        message = (f"keras-cnn: error: {what} must be one of {', '.join(COMMANDS)}; received {received!r}{hint}")
    print(f"{usage()}\n\n{message}", file=sys.stderr, flush=True)
    raise SystemExit(USAGE_ERROR)


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
