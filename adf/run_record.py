"""What produced a score file, so that a re-run resumes it only when nothing changed.

`adf detect` writes `<OUT>.run.json` next to its output before the first row:
the adf version, the checkpoint's content hash (sha256) and every option that
changes a score (`options`, an open dict: a new option that changes scores adds
a key). A later run with the same `-o` resumes only when its record is equal;
otherwise it refuses and says which fields differ. Rows without a record (an
older adf, a planted or stale `OUT.partial`) are never resumed.
"""
from __future__ import annotations

import hashlib
import json
import os

from adf.atomic import atomic_open, side_path

FORMAT = "adf-run-v1"


class OutputRefused(ValueError):
    """An output that cannot be written or resumed. `overwrite_helps` says whether
    starting afresh (--overwrite) would be a safe way out."""

    def __init__(self, message, overwrite_helps=True):
        super().__init__(message)
        self.overwrite_helps = overwrite_helps


def file_sha256(path, chunk=1 << 24):
    """Hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def make_record(checkpoint_sha256, options):
    """The record of a run: JSON-able, compared field by field."""
    from adf import __version__

    record = {"format": FORMAT, "adf_version": __version__, "checkpoint_sha256": checkpoint_sha256,
              "options": dict(options)}
    return json.loads(json.dumps(record))  # as it will read back (tuples -> lists, ...)


def record_path(path):
    return side_path(path, ".run.json")


def _flat(record):
    out = {k: v for k, v in record.items() if k != "options"}
    out.update({k: v for k, v in (record.get("options") or {}).items()})
    return out


def differences(old, new):
    """'field: old -> new' for every field that differs."""
    a, b = _flat(old), _flat(new)
    return [f"{k}: {a.get(k, '(not recorded)')!r} -> {b.get(k, '(not recorded)')!r}"
            for k in sorted(set(a) | set(b)) if a.get(k, "(not recorded)") != b.get(k, "(not recorded)")]


def read_record(path):
    """The record stored for output `path`, or None when there is none. Raises
    OutputRefused when it is a symbolic link or unreadable."""
    where = record_path(path)
    if os.path.islink(where):
        raise OutputRefused(f"{where} is a symbolic link; adf never reads or writes run records "
                            "through links")
    if not os.path.exists(where):
        return None
    try:
        with open(where, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError) as err:
        raise OutputRefused(f"{where}: unreadable run record ({err})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise OutputRefused(f"{where}: not an adf run record")
    return record


def write_record(path, record):
    with atomic_open(record_path(path)) as fh:
        json.dump(record, fh, indent=1, sort_keys=True)
        fh.write("\n")


def check_resumable(path, partial, record):
    """Raise OutputRefused unless the rows already in `path` / `partial` (when any)
    were produced by a run with exactly `record`."""
    for side in (partial, record_path(path)):
        if os.path.islink(side):
            raise OutputRefused(f"{side} is a symbolic link; adf never reads or writes its side files "
                                "through links (remove it)")
    present = [p for p in (path, partial) if os.path.lexists(p)]
    if not present:
        return
    old = read_record(path)
    if old is None:
        raise OutputRefused(f"{present[0]} exists but has no run record ({record_path(path)}), so "
                            "nothing says which checkpoint and options produced its rows; it is not resumed")
    changed = differences(old, record)
    if changed:
        raise OutputRefused(f"{present[0]} was produced by a different run, so its rows are not "
                            "resumed; changed: " + "; ".join(changed))
