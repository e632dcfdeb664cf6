"""Writing files so that a crash or a kill never leaves a truncated one.

Everything adf writes for later use (manifests, score files, reports, caches,
checkpoints, cut audio) goes to a temporary file in the destination folder and
is renamed over the destination when complete: readers see the old file or the
new one, never half of one.
"""
from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from contextlib import contextmanager


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path):
    """A temporary path next to `path` to write to; renamed over `path` when the block
    ends normally, removed when it raises. The temporary name keeps `path`'s
    extension (libsndfile picks the container from it)."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    # ".tmp-" + 8 random characters + "-" come on top of the name: cut the name
    # (from the front, keeping the extension) so a legal name stays legal.
    room = _name_max(folder) - len(".tmp-XXXXXXXX-")
    tail = os.fsencode(name)[-room:].decode("utf-8", "ignore")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=f"-{tail}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def atomic_open(path, mode="w", encoding="utf-8", **kwargs):
    """`open(path, mode)` for writing, made atomic with `atomic_path`."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding, **kwargs) as fh:
            yield fh


def write_text_atomic(text, path):
    """Write a text file atomically: never a truncated report."""
    with atomic_open(path) as fh:
        fh.write(text)


def write_csv_atomic(df, path, **kwargs):
    """Write a pandas DataFrame as CSV (no index) atomically."""
    with atomic_open(path, newline="") as fh:
        df.to_csv(fh, index=False, **kwargs)


def _name_max(folder):
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def side_path(path, suffix):
    """`path` + `suffix` (e.g. `.partial`), or, where that name would be longer
    than the file system allows, the name cut short plus a hash of the whole
    name (still one fixed name per `path`)."""
    path = os.fspath(path)
    folder, name = os.path.split(path)
    limit = _name_max(folder or ".")
    if len(os.fsencode(name + suffix)) <= limit:
        return path + suffix
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    keep = limit - len(suffix) - len(digest) - 1
    short = os.fsencode(name)[:keep].decode("utf-8", "ignore")
    return os.path.join(folder, f"{short}~{digest}{suffix}")


class LockedError(OSError):
    """Another process holds the lock of an output."""


class ExclusiveLock:
    """An advisory exclusive lock on `<path>.lock` (fcntl.flock), so two processes
    never build the same output at once; the second fails at once with
    LockedError. The lock file is removed on release. After taking the lock the
    holder checks the file is still the one at the path (a holder releasing in
    between removes it), so two processes can never both think they hold it."""

    def __init__(self, path):
        import fcntl

        self.path = side_path(path, ".lock")
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)  # outputs may go to new folders
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise LockedError(errno.EWOULDBLOCK, f"{path} is being written by another process "
                                      f"(lock {self.path} is held); wait for it to finish or choose "
                                      "another output") from None
                raise
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path, follow_symlinks=False))
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return
            os.close(fd)  # removed by its previous holder while we waited: take the new one

    def release(self):
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None
