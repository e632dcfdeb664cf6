"""Audio header metadata for manifests: read in parallel, cached between runs.

`probe_file` reads one header with soundfile (no decoding) and returns the
manifest's header columns (docs/data.md: Duration, SampleRate,
AudioChannel, AudioEncoding, AudioBitSample) or the reason the file cannot be
used. `probe_files` does this for many files in worker processes with a
progress bar and keeps a JSON cache keyed by path, size and modification time,
so a re-run only opens new or changed files. Every header is recomputed from
the file itself: the loader trusts these columns.

This module deliberately avoids importing torch: worker processes start fast.
"""
from __future__ import annotations

import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple

from adf.atomic import atomic_open
from adf.audio_file import AudioError, audio_header

CACHE_VERSION = 1
# Below this many files a process pool costs more than it saves.
MIN_PARALLEL_FILES = 256

# soundfile subtype -> (manifest AudioEncoding, AudioBitSample); the vocabulary
# is the one torchaudio's info() reports, which the reference manifests carry.
_SUBTYPES = {
    "PCM_S8": ("PCM_S", 8), "PCM_16": ("PCM_S", 16), "PCM_24": ("PCM_S", 24),
    "PCM_32": ("PCM_S", 32), "PCM_U8": ("PCM_U", 8), "FLOAT": ("PCM_F", 32),
    "DOUBLE": ("PCM_F", 64), "ULAW": ("ULAW", 8), "ALAW": ("ALAW", 8),
    "VORBIS": ("VORBIS", 0), "OPUS": ("OPUS", 0), "MPEG_LAYER_I": ("MP3", 0),
    "MPEG_LAYER_II": ("MP3", 0), "MPEG_LAYER_III": ("MP3", 0),
}


class AudioInfo(NamedTuple):
    """Header facts of one file; `frames` is the length in samples per channel."""

    frames: int
    sample_rate: int
    channels: int
    encoding: str
    bits: int

    @property
    def duration(self):
        """Seconds, rounded to 2 decimals as in the reference manifests."""
        return round(self.frames / self.sample_rate, 2)


def encoding_of(fmt, subtype):
    """Map soundfile's (format, subtype) onto (AudioEncoding, AudioBitSample)."""
    encoding, bits = _SUBTYPES.get(subtype, ("UNKNOWN", 0))
    if fmt == "FLAC":  # lossless, but reported as its own codec with the PCM depth
        return "FLAC", bits
    return encoding, bits


def probe_file(path):
    """Return (AudioInfo, None) for a usable file or (None, reason) for one that is not
    (the checks of adf.audio_file.audio_header, plus a length that rounds to 0.00 s)."""
    try:
        header = audio_header(path)
    except AudioError as err:
        return None, err.problem
    frames, sr = int(header.frames), int(header.samplerate)
    info = AudioInfo(frames, sr, int(header.channels), *encoding_of(header.format, header.subtype))
    if info.duration <= 0:
        return None, f"too short: {frames} samples at {sr} Hz rounds to 0.00 s"
    return info, None


def _probe_chunk(paths):
    return [probe_file(p) for p in paths]


def _file_key(path):
    """(size, mtime_ns) of `path`, or None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def load_cache(cache_path):
    """{path: [size, mtime_ns, result]}; a missing or unreadable cache is empty."""
    if not cache_path or not os.path.isfile(cache_path):
        return {}
    try:
        with open(cache_path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    return data.get("files", {})


def save_cache(cache_path, files):
    """Write the cache atomically (temp file, then rename)."""
    with atomic_open(cache_path) as fh:
        json.dump({"version": CACHE_VERSION, "files": files}, fh, separators=(",", ":"))


def _run(paths, jobs, progress, desc):
    """Probe `paths` serially or in `jobs` processes, in order, with a tqdm bar."""
    from tqdm import tqdm

    bar = tqdm(total=len(paths), desc=desc, unit="file", disable=not progress, mininterval=0.5)
    results = []
    with bar:
        if jobs <= 1 or len(paths) < MIN_PARALLEL_FILES:
            for p in paths:
                results.append(probe_file(p))
                bar.update()
            return results
        # Chunks amortise inter-process traffic; several per worker balance the load.
        size = max(16, min(1024, math.ceil(len(paths) / (jobs * 8))))
        chunks = [paths[i:i + size] for i in range(0, len(paths), size)]
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for chunk, out in zip(chunks, pool.map(_probe_chunk, chunks)):
                results.extend(out)
                bar.update(len(chunk))
    return results


def probe_files(paths, jobs=1, cache_path=None, progress=False, desc="headers"):
    """Probe every path; returns {path: AudioInfo or reason string}.

    With `cache_path`, results for files whose size and mtime are unchanged
    are reused, and the cache is rewritten with exactly the files probed now
    (so it does not grow with files that have gone).
    """
    paths = list(dict.fromkeys(str(p) for p in paths))
    cache = load_cache(cache_path)
    out, todo, keys = {}, [], {}
    for p in paths:
        key = _file_key(p)
        keys[p] = key
        hit = cache.get(p)
        if key is not None and hit is not None and hit[:2] == key:
            out[p] = AudioInfo(*hit[2]) if isinstance(hit[2], list) else hit[2]
        else:
            todo.append(p)
    for p, (info, reason) in zip(todo, _run(todo, jobs, progress, desc)):
        out[p] = info if info is not None else reason
    if cache_path:
        files = {p: keys[p] + [list(v) if isinstance(v, AudioInfo) else v]
                 for p, v in out.items() if keys[p] is not None}
        save_cache(cache_path, files)
    return out
