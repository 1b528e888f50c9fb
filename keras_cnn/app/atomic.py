"""Files written whole: a reader (or a run killed half-way) never sees part of a file.

``write_whole(path, write)`` lets ``write`` fill a temporary file beside ``path`` (same folder, so the final
``os.replace`` is atomic) and then moves it into place. The temporary file keeps the suffix of ``path``
(``.keras``, ``.weights.h5``: Keras checks it) and is created with the mode of any new file, ``0o666`` less the
umask (``0o644`` under umask 022), not the ``0o600`` of ``tempfile.mkstemp``.
"""

import contextlib
import os
import secrets

COMPOUND_SUFFIXES = (".weights.h5", ".preprocessing.json")


def suffix(path):
    """``.weights.h5`` for ``m.weights.h5``, else the last extension (``.keras``)."""
    for compound in COMPOUND_SUFFIXES:
        if path.endswith(compound):
            return compound
    return os.path.splitext(path)[1]


def refuse_existing(paths, flag="--overwrite"):
    """``FileExistsError`` naming the first of ``paths`` that exists (checked before any slow work)."""
    existing = [p for p in paths if os.path.exists(p)]
    if existing:
        raise FileExistsError(f"{existing[0]!r} exists; pass {flag} to replace it (received no {flag}; "
                              f"{len(existing)} of the {len(paths)} output files exist).")


def write_whole(path, write, *, overwrite=False):
    """Write ``path`` through ``write(staging_path)`` into a temporary file, then ``os.replace`` it into place.

    Without ``overwrite`` an existing ``path`` is a ``FileExistsError`` (checked before and after writing); the
    temporary file is removed if ``write`` fails. Returns ``path``.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if not overwrite:
        refuse_existing([path])
    staging, mode = _reserve(folder, path)
    try:
        write(staging)
        os.chmod(staging, mode)  # a writer that replaced the reserved file may have created it 0600
        if not overwrite:
            refuse_existing([path])
        os.replace(staging, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(staging)
        raise
    return path


def _reserve(folder, path):
    """A new, empty, uniquely named hidden file beside ``path`` and its mode (``0o666`` less the umask)."""
    base, end = os.path.basename(path), suffix(path)
    stem = base[: len(base) - len(end)] if end else base
    while True:
        staging = os.path.join(folder, f".{stem}.{secrets.token_hex(4)}.tmp{end}")
        try:
            descriptor = os.open(staging, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(descriptor)
        return staging, os.stat(staging).st_mode & 0o777
