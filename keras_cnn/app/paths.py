"""An output folder checked before the long work (training, conversion), so a run does not end, after hours, on a
folder it cannot write.

:func:`check_writable` raises the ``OSError`` the write would raise later, with a message naming the flag, the
path and what is wrong: ``NotADirectoryError`` (a file where a folder must be), ``IsADirectoryError`` (a folder
where a file must be), ``PermissionError`` (no write permission, or a read-only file system) and ``OSError``
with ``errno.ENAMETOOLONG``. The command line prints these as one line (``keras_cnn.cli``).
"""

import errno
import os


def check_writable(folder, flag="--output", files=()):
    """Refuse ``folder`` (created if needed, later) and the ``files`` (paths inside it) the run will write."""
    folder = os.path.abspath(os.fspath(folder))
    targets = [os.path.abspath(os.fspath(f)) for f in files]
    existing = _nearest_existing(folder, flag)
    _check_lengths(folder, targets, existing, flag)
    shown = f"{flag} {_short(folder)}"
    for target in targets:
        if os.path.isdir(target):
            raise IsADirectoryError(errno.EISDIR, f"{shown}: {_short(target)} is a folder; the run writes a file "
                                                  "there")
    if not os.access(existing, os.W_OK | os.X_OK):
        reason = "the file system is read-only" if _read_only(existing) else "permission denied"
        what = "write into" if existing == folder else "create it in"
        raise PermissionError(errno.EACCES, f"{shown}: cannot {what} {_short(existing)}: {reason}")


def _nearest_existing(folder, flag):
    """The folder itself or its nearest existing parent; a file on the way is a ``NotADirectoryError``."""
    path = folder
    while not os.path.isdir(path):
        if os.path.lexists(path):
            raise NotADirectoryError(errno.ENOTDIR, f"{flag} {_short(folder)}: {_short(path)} exists and is not "
                                                    "a folder")
        path = os.path.dirname(path)
    return path


def _check_lengths(folder, targets, existing, flag):
    """Each name within the file system's NAME_MAX bytes, each path within PATH_MAX."""
    name_max, path_max = _limit(existing, "PC_NAME_MAX", 255), _limit(existing, "PC_PATH_MAX", 4096)
    shown = f"{flag} {_short(folder)}"
    for path in (folder, *targets):
        size = len(os.fsencode(path))
        if size >= path_max:
            raise OSError(errno.ENAMETOOLONG, f"{shown}: the path {_short(path)} is too long ({size} bytes; "
                                              f"this file system allows {path_max - 1})")
        for name in path.split(os.sep):
            if len(os.fsencode(name)) > name_max:
                raise OSError(errno.ENAMETOOLONG, f"{shown}: the name {_short(name)} is too long "
                                                  f"({len(os.fsencode(name))} bytes; this file system allows "
                                                  f"{name_max} per name)")


def _limit(folder, name, default):
    try:
        return os.pathconf(folder, name)
    except (OSError, ValueError):
        return default


def _read_only(folder):
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _short(text, keep=100):
    return repr(text) if len(text) <= 2 * keep else repr(f"{text[:keep]}...{text[-keep:]}")
