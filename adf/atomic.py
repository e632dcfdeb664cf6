"""Writing files so that a crash or a kill never leaves a truncated one.

Everything adf writes for later use (manifests, score files, reports, caches,
checkpoints, cut audio) goes to a temporary file in the destination folder and
is renamed over the destination when complete: readers see the old file or the
new one, never half of one.
"""
from __future__ import annotations

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
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=f"-{name}", dir=folder)
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
