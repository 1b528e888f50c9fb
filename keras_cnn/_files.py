"""Files written whole and published together: exports, converted weights and preprocessing records.

A *publication* stages every file (or folder) of one job in a hidden folder ``<root>/.keras_cnn-publish-<id>/``
and moves them all into place at the end, while holding ``<root>/.keras_cnn-publish.lock``:

* **whole files**: a reader never sees a partly written file, and a failed job leaves nothing new;
* **one set**: two jobs writing into one folder (two ``keras-cnn export`` runs) take turns, the second waiting
  for the first; the "never replaced without overwrite" checks run under the lock, so they hold until the set is
  published and no folder ever mixes two jobs' files;
* **crash safety**: before the first move a journal is written into the staging folder; a job killed while
  moving its files is completed (rolled forward) by the next publication into that folder, and one killed
  before has its staging folder removed then. The lock is ``flock`` (released by the kernel when the process
  dies, so it is never stale).

Files get the mode of a normally created file (``0o666``/``0o777`` less the umask: ``0644``/``0755`` under umask
022), not ``mkstemp``'s ``0600``, so TF Serving or a web server running as another user can read them.
"""

import contextlib
import contextvars
import json
import os
import secrets
import shutil
import sys
import time

try:
    import fcntl
except ImportError:  # Windows: msvcrt's byte-range lock instead of flock
    fcntl = None
    import msvcrt

PREFIX = ".keras_cnn-publish-"
LOCK = ".keras_cnn-publish.lock"
JOURNAL = "journal.json"
COMPOUND_SUFFIXES = (".weights.h5", ".preprocessing.json")
_ACTIVE = contextvars.ContextVar("keras_cnn_publication", default=None)


def new_mode(directory=False):
    """The mode of a normally created file (``0o666``) or folder (``0o777``) under the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def suffix(path):
    """``.weights.h5`` for ``m.weights.h5``, else the last extension (``.keras``): staged files keep it (Keras
    checks it)."""
    for compound in COMPOUND_SUFFIXES:
        if path.endswith(compound):
            return compound
    return os.path.splitext(path)[1]


def refuse_existing(paths, flag="overwrite=True"):
    """``FileExistsError`` naming the first of ``paths`` that exists."""
    existing = [os.fspath(p) for p in paths if os.path.lexists(p)]
    if existing:
        raise FileExistsError(f"{existing[0]!r} exists; pass {flag} to replace it ({len(existing)} of the "
                              f"{len(paths)} output files exist).")


class Publication:
    """The staged files of one job under ``root`` (use :func:`publish_together`)."""

    def __init__(self, root, staging, flag):
        self.root, self.staging, self.flag = root, staging, flag
        self.entries = []  # (staged name, target relative to root)

    def covers(self, path):
        relative = os.path.relpath(os.path.abspath(path), self.root)
        return relative != os.curdir and not relative.startswith(os.pardir + os.sep) and relative != os.pardir

    def stage(self, target, overwrite, *, folder=False):
        """A new staged path for ``target`` (a file to write, or an empty folder to fill with ``folder=True``)."""
        target = os.path.abspath(target)
        if not self.covers(target):
            raise ValueError(f"{target!r} is outside the folder being published, {self.root!r}.")
        relative = os.path.relpath(target, self.root)
        if any(relative == t for _, t in self.entries):
            raise ValueError(f"{target!r} is written twice in one publication.")
        if not overwrite:
            refuse_existing([target], self.flag)
        name = f"{len(self.entries)}{'' if folder else suffix(target)}"
        staged = os.path.join(self.staging, name)
        if folder:
            os.mkdir(staged, new_mode(directory=True))
        else:
            os.close(os.open(staged, os.O_CREAT | os.O_EXCL | os.O_WRONLY, new_mode()))
        self.entries.append((name, relative))
        return staged

    def commit(self):
        """Journal, then move every staged path into place (see :func:`_roll_forward`)."""
        if not self.entries:
            return
        for name, _ in self.entries:
            staged = os.path.join(self.staging, name)
            if not os.path.isdir(staged):  # a writer that replaced the staged file may have made it 0600
                os.chmod(staged, new_mode())
        journal = os.path.join(self.staging, JOURNAL)
        with open(journal + ".tmp", "w", encoding="utf-8") as file:
            json.dump([list(e) for e in self.entries], file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(journal + ".tmp", journal)
        _roll_forward(self.root, self.staging)


@contextlib.contextmanager
def publish_together(folder, *, flag="overwrite=True", wait=True):
    """Stage every file written inside the block under ``folder`` and publish them together at its end.

    Inside the block, :func:`write_whole`, :func:`write_all` and :func:`staged_folder` (and through them every
    keras_cnn export and record writer) stage instead of writing; an exception discards them all. Nested calls
    whose folder lies inside an active publication join it. Yields the :class:`Publication`.
    """
    active = _ACTIVE.get()
    if active is not None and (active.covers(folder) or os.path.abspath(folder) == active.root):
        yield active
        return
    root = os.path.abspath(folder)
    created = _make_folders(root)
    try:
        lock = _acquire(root, wait, created)
    except BaseException:
        _remove_empty(created)
        raise
    staging = None
    try:
        _recover(root)
        staging = os.path.join(root, PREFIX + secrets.token_hex(4))
        os.mkdir(staging, new_mode(directory=True))
        publication = Publication(root, staging, flag)
        token = _ACTIVE.set(publication)
        try:
            yield publication
        finally:
            _ACTIVE.reset(token)
        publication.commit()
    finally:
        if staging is not None and not os.path.exists(os.path.join(staging, JOURNAL)):
            shutil.rmtree(staging, ignore_errors=True)
        _release(root, lock)
        _remove_empty(created)


def write_whole(path, write, *, overwrite=False, flag="overwrite=True"):
    """Write ``path`` through ``write(staged_path)`` (the staged file keeps ``path``'s suffix) and publish it."""
    with publish_together(os.path.dirname(os.path.abspath(path)), flag=flag) as publication:
        write(publication.stage(path, overwrite))
    return os.fspath(path)


def write_text(path, text):
    """Write (or replace) the UTF-8 text file ``path`` whole."""
    def write(staged):
        with open(staged, "w", encoding="utf-8") as file:
            file.write(text)

    return write_whole(path, write, overwrite=True)


def write_all(contents, *, overwrite=False, flag="overwrite=True"):
    """Write ``{path: bytes}`` all or nothing."""
    folders = [os.path.dirname(os.path.abspath(p)) for p in contents]
    with publish_together(os.path.commonpath(folders), flag=flag) as publication:
        for path, data in contents.items():
            _put(publication.stage(path, overwrite), data)


def _put(path, data):
    with open(path, "wb") as file:
        file.write(data)


@contextlib.contextmanager
def staged_folder(target, *, overwrite=False, root=None, flag="overwrite=True"):
    """An empty staged folder to fill; published as ``target`` at the end of the block (or of the active
    publication). ``root``: the folder to lock (default: ``target``'s parent)."""
    with publish_together(root or os.path.dirname(os.path.abspath(target)), flag=flag) as publication:
        yield publication.stage(target, overwrite, folder=True)


def _roll_forward(root, staging):
    """Move what the journal lists into place, replacing folders through the staging folder's trash, then
    remove the staging folder. Repeatable: a move already done is skipped."""
    with open(os.path.join(staging, JOURNAL), encoding="utf-8") as file:
        entries = json.load(file)
    for index, (name, relative) in enumerate(entries):
        staged, target = os.path.join(staging, name), os.path.join(root, relative)
        if not os.path.lexists(staged):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.isdir(target) and not os.path.islink(target):
            os.replace(target, os.path.join(staging, f"replaced-{index}"))
        os.replace(staged, target)
    os.remove(os.path.join(staging, JOURNAL))
    shutil.rmtree(staging, ignore_errors=True)


def _recover(root):
    """Complete the publications of killed jobs that had started moving files; drop the others' staging."""
    for name in sorted(os.listdir(root)):
        staging = os.path.join(root, name)
        if not (name.startswith(PREFIX) and os.path.isdir(staging)):
            continue
        if os.path.exists(os.path.join(staging, JOURNAL)):
            print(f"note: completing an export into {root} that was interrupted while publishing its files",
                  file=sys.stderr)
            _roll_forward(root, staging)
        else:
            shutil.rmtree(staging, ignore_errors=True)


def _remove_empty(folders):
    for path in folders:  # innermost first; only those left empty
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _make_folders(root):
    """Create ``root`` and its missing parents; the created ones, innermost first."""
    missing, folder = [], root
    while not os.path.isdir(folder):
        if os.path.lexists(folder):
            raise NotADirectoryError(f"{folder!r} exists and is not a folder; cannot write into it.")
        missing.append(folder)
        folder = os.path.dirname(folder)
    if missing:
        os.makedirs(root, new_mode(directory=True), exist_ok=True)  # another job may create it at the same time
    return missing


def _acquire(root, wait, created):
    """Lock ``root`` (``flock`` on its lock file); waits for another job unless ``wait=False``. ``created``: the
    folders this job made, extended if it has to make them again."""
    path = os.path.join(root, LOCK)
    announced = False
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, new_mode())
        except FileNotFoundError:  # the job this one waited for made the folder, failed and removed it again
            created[:0] = _make_folders(root)
            continue
        except PermissionError:
            raise PermissionError(f"cannot write into {root!r}: permission denied.") from None
        try:
            _lock(descriptor, block=False)
        except (BlockingIOError, PermissionError):
            holder = _holder(path)
            if not wait:
                os.close(descriptor)
                raise FileExistsError(f"{root!r} is being written by another keras_cnn job ({holder}).") from None
            if not announced:
                print(f"waiting for another keras_cnn job writing into {root} ({holder}) ...", file=sys.stderr,
                      flush=True)
                announced = True
            _lock(descriptor, block=True)
        if _same_file(descriptor, path):  # the previous holder removes the file when done: lock the new one
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"pid {os.getpid()}: {' '.join(sys.argv)[:200]}".encode())
            return descriptor
        os.close(descriptor)


def _lock(descriptor, block):
    if fcntl is not None:
        fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        return
    while True:  # msvcrt.LK_LOCK gives up after 10 s; an export can take longer
        try:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
            return
        except OSError:
            if not block:
                raise BlockingIOError from None
            time.sleep(0.2)


def _release(root, descriptor):
    with contextlib.suppress(OSError):  # Windows cannot remove a file another job holds open; it stays, unlocked
        os.remove(os.path.join(root, LOCK))
    os.close(descriptor)


def _same_file(descriptor, path):
    try:
        here, there = os.fstat(descriptor), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _holder(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read().strip() or "starting"
    except OSError:
        return "unknown process"
