"""Limits on what an audio header may claim (adf.audio re-exports AudioLimits).

Kept free of torch so `adf detect --help` can show the defaults without
importing it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AudioLimits:
    """What a header may claim before anything is decoded or resampled: a
    hostile or broken header (a 38 KB file declaring 1 Hz, resampled x16000)
    must not exhaust the machine. `max_seconds` bounds one model input (a
    whole file, a segment or a window)."""

    min_rate: int = 4000
    max_rate: int = 768000
    max_seconds: float = 3600.0

    def check(self, path, rate, frames):
        """Raise AudioError when `frames` samples at `rate` Hz break a limit."""
        from adf.audio import AudioError

        if not self.min_rate <= rate <= self.max_rate:
            raise AudioError(path, f"sample rate {rate} Hz is outside the accepted {self.min_rate}-"
                                   f"{self.max_rate} Hz (--min-rate/--max-rate)")
        if frames / rate > self.max_seconds:
            raise AudioError(path, f"{frames / rate:.0f} s in one model input is over the limit of "
                                   f"{self.max_seconds:g} s (--max-seconds); score it in windows (--window)")


def add_rate_arguments(parser):
    """--min-rate / --max-rate (the sample rates a command accepts), with AudioLimits' defaults."""
    parser.add_argument("--min-rate", type=int, default=AudioLimits.min_rate,
                        help="lowest accepted sample rate in Hz (default %(default)d)")
    parser.add_argument("--max-rate", type=int, default=AudioLimits.max_rate,
                        help="highest accepted sample rate in Hz (default %(default)d)")
