"""A CSV built row by row that survives kills and resumes: `adf detect`'s
score and window files.

Rows go to `<path>.partial` as they finish (flushed and fsynced), the final
file is written atomically at the end, and a re-run reads both back
(adf.scorefile.read_score_rows keeps only complete rows) and adds only what is
missing.
"""
from __future__ import annotations

import os

from adf.scorefile import read_score_rows


class ResumableCSV:
    """A CSV built row by row that survives kills: rows are appended to
    `<path>.partial` (flushed and fsynced per `append`), and `finalize` writes
    `path` atomically (temp file, then rename) and removes the side file.

    Opening one reads the rows of an earlier run from `path` and `<path>.partial`
    (`keep(row)` filters them; `overwrite` removes them), so a re-run adds only
    what is missing. Rows are keyed by `key(row)`; the last one of a key wins.
    With `record` (adf.run_record.make_record) the earlier rows are used only
    when the earlier run's record is equal, and `known` (the keys of this run's
    inputs) refuses rows of inputs not given now; both raise OutputRefused.
    The side file is never followed when it is a symbolic link, and an
    exclusive lock (`<path>.lock`) keeps a second writer of `path` out until
    `finalize` or `close`.
    """

    def __init__(self, path, columns, key, keep=None, overwrite=False, record=None, known=None):
        import csv

        from adf.atomic import ExclusiveLock, side_path
        from adf.run_record import OutputRefused, check_resumable, record_path, write_record

        self.path, self.partial = os.fspath(path), side_path(path, ".partial")
        self.key = key
        self._lock = ExclusiveLock(self.path)
        try:
            rows = {}
            if overwrite:  # the old rows go now: a kill must not leave them beside the new record
                for old in (self.path, record_path(self.path)):
                    if os.path.lexists(old):
                        os.unlink(old)
            else:
                if os.path.islink(self.partial):
                    raise OutputRefused(f"{self.partial} is a symbolic link; adf never reads or writes "
                                        "its side files through links (remove it)")
                if record is not None:
                    check_resumable(self.path, self.partial, record)
                for source in (self.path, self.partial):
                    for row in read_score_rows(source):
                        if keep is None or keep(row):
                            rows[key(row)] = row
            if known is not None:
                foreign = [row for k, row in rows.items() if k not in known]
                if foreign:
                    raise OutputRefused(
                        f"{self.path} holds rows of {len(foreign)} input(s) not given this time "
                        f"(e.g. {foreign[0].get('path')}); give the same inputs to resume it, or start "
                        "afresh")
            self.previous = list(rows.values())
            extra = [c for row in self.previous for c in row if c not in columns]
            self.columns = list(columns) + list(dict.fromkeys(extra))
            if record is not None:
                write_record(self.path, record)
            self._write(self.partial, self.previous)  # drop a cut-off last line, then append
            fd = os.open(self.partial, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
        except BaseException:
            self._lock.release()
            raise
        self._fh = open(fd, "a", encoding="utf-8", newline="")
        self._writer = csv.DictWriter(self._fh, self.columns, lineterminator="\n", restval="")
        self.new = []

    def _write(self, path, rows):
        import csv

        from adf.atomic import atomic_open

        with atomic_open(path, newline="") as fh:  # csv, not pandas: import time counts in start-up
            writer = csv.DictWriter(fh, self.columns, lineterminator="\n", restval="")
            writer.writeheader()
            writer.writerows(rows)

    def append(self, rows):
        """Add finished rows; they are on disk when this returns."""
        if not rows:
            return
        self._writer.writerows(rows)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.new.extend(rows)

    def close(self):
        """Stop without finalizing: the side file stays for a later run, unless it holds no rows."""
        self._fh.close()
        if not (self.previous or self.new):
            os.unlink(self.partial)
        self._lock.release()

    def rows(self, sort_key=None):
        """Every row (earlier runs' and this one's; the last of a key), as `finalize` writes them."""
        rows = {self.key(row): row for row in self.previous + self.new}
        return sorted(rows.values(), key=sort_key) if sort_key else list(rows.values())

    def finalize(self, sort_key=None):
        """Write every row (earlier runs' and this one's) to `path`, atomically."""
        self._fh.close()
        rows = self.rows(sort_key)
        self._write(self.path, rows)
        os.unlink(self.partial)
        self._lock.release()
        return len(rows)
