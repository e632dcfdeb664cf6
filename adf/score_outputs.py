"""The files one `adf detect` run writes, kept in step and resumable.

`-o` (the score CSV), `--segments` (per-window scores) and `--embeddings`
(pooled embeddings, adf.embed.EmbeddingStore) grow together: finished Scores
are buffered and flushed to all of them at once, windows and embeddings
before the score rows, so a row in the score CSV means its windows and its
embedding are saved too. Each file resumes what an earlier run with the same
record (adf.run_record) left (adf.resumable_csv.ResumableCSV).
"""
from __future__ import annotations

import time

from adf.resumable_csv import ResumableCSV
from adf.scorefile import SCORE_COLUMNS, WINDOW_COLUMNS, score_row, window_rows

FLUSH_SECONDS = 5  # a slow run still saves its rows this often


def row_key(row):
    """What identifies a row across runs: (path, id)."""
    return row["path"], row["id"]


class ScoreOutputs:
    """Opens (resuming or, with `overwrite`, starting afresh) the score CSV `output`,
    the window CSV `segments` and the embedding array `embeddings` (each optional
    but the first) for `items`; raises ValueError or OSError (what it opened is
    closed again) when an earlier output may not be resumed."""

    def __init__(self, output, items, record, segments=None, embeddings=None, overwrite=False):
        self.out = self.segments = self.store = None
        self.order = {(item.path, item.id): n for n, item in enumerate(items)}
        columns = SCORE_COLUMNS + (["label"] if any(i.label is not None for i in items) else [])
        try:
            if embeddings:
                from adf.embed import EmbeddingStore

                self.store = EmbeddingStore(embeddings, output, overwrite=overwrite)
            # With embeddings, rows scored earlier without one are dropped (and scored again).
            self.out = ResumableCSV(output, columns, row_key, overwrite=overwrite, record=record,
                                    known=set(self.order),
                                    keep=None if self.store is None else lambda row: row_key(row) in self.store)
            self.finished = {row_key(row) for row in self.out.previous}
            if segments:
                seg_columns = WINDOW_COLUMNS + columns[len(SCORE_COLUMNS):]
                self.segments = ResumableCSV(segments, seg_columns, lambda r: (r["path"], r["id"], r["start"]),
                                             keep=lambda r: row_key(r) in self.finished, overwrite=overwrite,
                                             record=record)
        except BaseException:
            if self.out is not None:
                self.out.close()
            raise
        self._rows, self._windows, self._vectors = [], [], []
        self._flushed = time.monotonic()

    def segments_missing(self):
        """How many inputs scored earlier have no rows in the window CSV."""
        return len(self.finished - {row_key(row) for row in self.segments.previous})

    def add(self, score, batch_size):
        """Buffer a finished Score; flush when `batch_size` rows wait or FLUSH_SECONDS passed."""
        self._rows.append(score_row(score))
        self._windows.extend(window_rows(score))
        if self.store is not None:
            self._vectors.append(score.embedding)
        if len(self._rows) >= batch_size or time.monotonic() - self._flushed > FLUSH_SECONDS:
            self.flush()

    def flush(self):
        if self.segments is not None:
            self.segments.append(self._windows)  # windows first: a row in OUT means its windows are saved
        if self.store is not None:  # embeddings too
            self.store.append([row_key(r) for r in self._rows], self._vectors)
        self.out.append(self._rows)
        self._rows, self._windows, self._vectors = [], [], []
        self._flushed = time.monotonic()

    @property
    def kept(self):
        """Rows on disk so far (earlier runs' and this one's)."""
        return len(self.out.previous) + len(self.out.new)

    def close(self):
        """Stop without finalizing: the side files stay for a later run."""
        for csv_file in (self.out, self.segments):
            if csv_file is not None:
                csv_file.close()

    def _position(self, row):
        return self.order.get(row_key(row), len(self.order))

    def finalize(self):
        """Write every output in input order (atomically); returns the score CSV's row count."""
        if self.store is not None:  # the array first: a final OUT whose array is missing or stale is re-embedded
            self.store.finalize([row_key(r) for r in self.out.rows(sort_key=self._position)])
        total = self.out.finalize(sort_key=self._position)
        if self.segments is not None:
            self.segments.finalize(sort_key=lambda r: (self._position(r), float(r["start"])))
        if self.store is not None:
            self.store.remove_partial()
        return total
