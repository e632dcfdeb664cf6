"""Progress that reaches people whether or not they watch a terminal.

On a terminal a tqdm bar; otherwise (a log file, a batch job, a pipe) tqdm
stays silent, so `LogProgress` prints one plain line every `every` seconds
with what is done, the elapsed time and an estimate of what is left.
"""
from __future__ import annotations

import sys
import time


class LogProgress:
    """The part of tqdm's interface adf uses (total, n, update, refresh, write, close),
    as a line every `every` seconds (0: every update) and one at the end."""

    def __init__(self, desc, unit, every, file=None, total=0):
        self.desc, self.unit, self.every = desc, unit, every
        self.file = file or sys.stderr
        self.total, self.n = total, 0
        self._start = self._last = time.monotonic()

    def _line(self):
        elapsed = time.monotonic() - self._start
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        left = ""
        if self.total and 0 < self.n < self.total:
            left = f", about {elapsed * (self.total - self.n) / self.n:.0f} s left"
        print(f"{self.desc}: {self.n}/{self.total or '?'} {self.unit}s{share} in {elapsed:.0f} s{left}",
              file=self.file, flush=True)
        self._last = time.monotonic()

    def update(self, n=1):
        self.n += n
        if n and time.monotonic() - self._last >= self.every:
            self._line()

    def refresh(self):
        pass

    def write(self, text, file=None):
        print(text, file=file or self.file, flush=True)

    def close(self):
        if self.n:
            self._line()


def progress(desc, unit, every, file=None):
    """A tqdm bar on a terminal, else a LogProgress printing every `every` seconds."""
    file = file or sys.stderr
    if getattr(file, "isatty", lambda: False)():
        from tqdm import tqdm

        return tqdm(total=0, unit=unit, desc=desc, file=file)
    return LogProgress(desc, unit, every, file)
