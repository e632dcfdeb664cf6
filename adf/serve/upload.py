"""An uploaded audio file -> the 16 kHz model inputs of one request, within the limits.

The file is read exactly as `adf detect` reads a file (adf.audio: header
checks, then mono mix and resampling of the sample range), so the service's
scores equal the command's. Windows are planned with adf.inference's
`plan_windows` and each one is read, mixed and resampled on its own, as
`adf detect --window/--hop` does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from adf.audio import TARGET_SR, AudioError, audio_header, load_16k
from adf.inference import plan_windows
from adf.limits import AudioLimits


# Windows multiply the audio a request holds in memory and costs the model
# (window / hop times its duration): bounded per request.
MAX_WINDOWS = 2000
WINDOWED_AUDIO_FACTOR = 4


class TooLarge(Exception):
    """An upload over a size or duration limit (HTTP 413); the message says which."""


@dataclass(frozen=True)
class ServeLimits:
    """What one request may bring. `max_upload_bytes` bounds the request body,
    `max_seconds` the audio's duration; `min_rate`/`max_rate` the sample rates
    accepted (as `adf detect`'s --min-rate/--max-rate)."""

    max_upload_bytes: int = 50 * 2**20
    max_seconds: float = 600.0
    min_rate: int = AudioLimits.min_rate
    max_rate: int = AudioLimits.max_rate


@dataclass
class DecodedUpload:
    """The model inputs of one request: `pieces` are 16 kHz mono waveforms; piece 0
    is the whole file when `whole`, the windows follow ((start, end) seconds in `spans`)."""

    duration: float
    sample_rate: int
    channels: int
    format: str
    whole: bool
    pieces: list = field(default_factory=list)
    spans: list = field(default_factory=list)


def decode_upload(path, limits, min_samples, window=None, hop=None, whole=True):
    """Read the upload saved at `path`. Raises AudioError (unreadable, empty, too
    short, unsupported rate: HTTP 400) or TooLarge (over `limits.max_seconds`).
    `min_samples` is the model's shortest input at 16 kHz."""
    info = audio_header(path)
    sr, frames = int(info.samplerate), int(info.frames)
    duration = frames / sr
    if duration > limits.max_seconds:
        raise TooLarge(f"the audio lasts {duration:.1f} s; this service accepts at most "
                       f"{limits.max_seconds:g} s")
    AudioLimits(limits.min_rate, limits.max_rate, math.inf).check(path, sr, frames)
    if frames * TARGET_SR / sr < min_samples:
        raise AudioError(path, f"too short: {duration:.4f} s; the model needs at least "
                               f"{min_samples / TARGET_SR:.3f} s")
    out = DecodedUpload(duration, sr, int(info.channels), f"{info.format}/{info.subtype}", whole)
    if whole:
        out.pieces.append(load_16k(path, 0, frames))
    if window is not None:
        spans = plan_windows(0, frames, sr, window, hop or window, min_samples)
        windowed = sum(b - a for a, b in spans) / sr
        if len(spans) > MAX_WINDOWS or windowed > WINDOWED_AUDIO_FACTOR * limits.max_seconds:
            raise TooLarge(f"{len(spans)} windows of {window:g} s every {hop or window:g} s hold {windowed:.0f} s "
                           f"of audio; at most {MAX_WINDOWS} windows and {WINDOWED_AUDIO_FACTOR} x the longest "
                           f"accepted audio ({limits.max_seconds:g} s) are scored per request: use a longer hop")
        for a, b in spans:
            out.pieces.append(load_16k(path, a, b))
            out.spans.append((a / sr, b / sr))
    return out
