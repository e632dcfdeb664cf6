"""Test-set segmentation (docs/data.md).

Two rules from the reference:

* Deepfake-Eval-2024: fixed-length, non-overlapping chunks of D seconds
  (D in 4, 10, 13, 30, 50) that tile the whole file; the remainder is kept.
  `fixed_segments` computes the boundaries (the Deepfake-Eval-2024 preparer,
  adf.data.corpora, turns them into manifest rows that point into the
  original file through `Start`/`Stop`, so no audio is written), and
  `write_fixed_segments` writes the chunks as audio files in the reference
  layout for those who want files.
* DEEP-VOICE: a fixed list of overlapping segments replayed from the
  reference's log. `parse_deepvoice_log` reads the log into a table (the
  DEEP-VOICE preparer emits `Start`/`Stop` rows from it), and
  `write_deepvoice_segments` writes the WAV files, all channels kept.

Files that cannot be read or written are logged, reported and skipped.
"""
from __future__ import annotations

import logging
import math
import os
import re

import numpy as np
import pandas as pd
import soundfile as sf

from adf.atomic import atomic_path
from adf.audio import AudioError, read_audio, to_mono
from adf.audio_file import audio_header
from adf.data.manifest import ROOT_PLACEHOLDER

log = logging.getLogger(__name__)

# Segment durations (seconds) of the reference's Deepfake-Eval-2024 experiments.
DURATIONS = (4, 10, 13, 30, 50)
def fixed_segments(num_samples, sr, seconds):
    """Boundaries [(start, stop), ...] of the fixed-length rule, 0-based, stop exclusive.

    L = floor(seconds * sr), n = ceil(num_samples / L); segment k covers
    [k*L, min((k+1)*L, num_samples)). The last segment keeps the remainder
    (1..L samples); a file shorter than L gives one segment, the whole file.
    """
    num_samples, sr = int(num_samples), int(sr)
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1 (got {num_samples})")
    if sr < 1:
        raise ValueError(f"sample rate must be >= 1 Hz (got {sr})")
    length = math.floor(seconds * sr)
    if length < 1:
        raise ValueError(f"segment of {seconds} s at {sr} Hz holds no sample")
    n = -(-num_samples // length)  # ceil without float error
    return [(k * length, min((k + 1) * length, num_samples)) for k in range(n)]


def segment_file_name(path, k, sep="_seg"):
    """`<stem><sep><k><ext>` for segment k of `path` (stem = name without its last extension)."""
    stem, ext = os.path.splitext(os.path.basename(path))
    return f"{stem}{sep}{k}{ext}"


def _write_audio(path, data, sr, subtype=None):
    """Write an audio file atomically (adf.atomic: never a half-written file)."""
    with atomic_path(path) as tmp:
        sf.write(tmp, data, sr, subtype=subtype)


def write_fixed_segments(files, out_dir, durations=DURATIONS, root=None):
    """Write fixed-length segments as audio in the reference layout.

    Each file of `files` (columns `Path`, `Label`, `Proportion` = split) is
    decoded once at its native rate, mixed to mono, and cut for every D in
    `durations` into `<out_dir>/<split>/<D>s/<label>/<stem>_seg<k><ext>`
    (container from the input extension, libsndfile's default subtype).
    `root` replaces `$ROOT` in paths. Unreadable files and segments that
    cannot be encoded (M4A, for instance) are logged and skipped.
    Returns (written paths, problems).
    """
    written, problems = [], []
    for path, label, split in zip(files["Path"], files["Label"], files["Proportion"]):
        path = str(path)
        if root is not None:
            path = path.replace(ROOT_PLACEHOLDER, str(root).rstrip("/"), 1)
        try:
            wav, sr = read_audio(path)
        except AudioError as err:
            problems.append(str(err))
            log.warning("skipped: %s", err)
            continue
        mono = to_mono(wav).numpy()
        targets = [
            (os.path.join(out_dir, str(split), f"{seconds:g}s", str(label), segment_file_name(path, k)), a, b)
            for seconds in durations
            for k, (a, b) in enumerate(fixed_segments(len(mono), sr, seconds), 1)
        ]
        for target, start, stop in targets:
            try:
                _write_audio(target, mono[start:stop], sr)
            except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
                # the container cannot be written (M4A, ...): every segment would fail
                msg = f"{path}: cannot write segment {target} ({err}); file skipped"
                problems.append(msg)
                log.warning("skipped: %s", msg)
                break
            written.append(target)
    return written, problems


# ---------------------------------------------------------------- DEEP-VOICE

_LOG_LINE = re.compile(
    r"^Audio:\s*(?P<base>.+)_seg_(?P<n>\d+),\s*start at:\s*(?P<start>-?\d+),\s*end at:\s*(?P<end>-?\d+)\s*$"
)


def parse_deepvoice_log(source):
    """Read the reference's DEEP-VOICE segmentation log into a table.

    `source` is a path or the log text (a string with a newline or starting
    with `Audio:`). Only `Audio: ...` lines count (the
    `Saved:` and completion lines are ignored); a malformed `Audio:` line is
    an error naming its line number. Columns: `base`, `n` (1-based),
    `start`, `end` (samples), `folder` (`FAKE` when `base` contains `-to-`,
    else `REAL`).
    """
    name = "<text>"
    if isinstance(source, os.PathLike) or "\n" not in source and not source.lstrip().startswith("Audio:"):
        name = os.fspath(source)
        with open(source, encoding="utf-8") as fh:  # FileNotFoundError names the file
            source = fh.read()
    rows, bad = [], []
    for lineno, line in enumerate(str(source).splitlines(), 1):
        if not line.lstrip().startswith("Audio:"):
            continue
        m = _LOG_LINE.match(line.strip())
        if m is None:
            bad.append(f"line {lineno}: not 'Audio: <base>_seg_<n>, start at: <s>, end at: <e>' ({line.strip()!r})")
            continue
        rows.append((m["base"], int(m["n"]), int(m["start"]), int(m["end"])))
    if bad:
        raise ValueError(f"{name}: {len(bad)} malformed line(s):\n  " + "\n  ".join(bad[:20]))
    table = pd.DataFrame(rows, columns=["base", "n", "start", "end"])
    table["folder"] = np.where(table["base"].str.contains("-to-", regex=False), "FAKE", "REAL")
    return table


def _source_path(audio_dir, folder, base):
    return os.path.join(audio_dir, folder, f"{base}.wav")


def _clamped(table, audio_dir):
    """Group `table` by source file and clamp start/end to the source length.
    Returns ([(source path, sf.info, rows)], problems); missing or unreadable
    sources and segments left empty by clamping are reported, not returned."""
    problems = []
    groups = []
    for (folder, base), rows in table.groupby(["folder", "base"], sort=False):
        src = _source_path(audio_dir, folder, base)
        try:
            info = audio_header(src)
        except AudioError as err:
            msg = f"{src}: source of {len(rows)} DEEP-VOICE segment(s) missing or unreadable ({err.problem})"
            problems.append(msg)
            log.warning("skipped: %s", msg)
            continue
        rows = rows.copy()
        rows["start"] = rows["start"].clip(lower=0, upper=info.frames)
        rows["end"] = rows["end"].clip(lower=0, upper=info.frames)
        empty = rows["end"] <= rows["start"]
        for n in rows.loc[empty, "n"]:
            problems.append(f"{src}: segment {n} is empty after clamping to {info.frames} samples")
        groups.append((src, info, rows[~empty]))
    return groups, problems


def write_deepvoice_segments(table, audio_dir, out_dir):
    """Replay the DEEP-VOICE log: write `<out_dir>/<FOLDER>/<base>_seg_<n>.wav`.

    Sources are read at their native rate with all channels kept; each
    segment is the clamped slice [start, end) saved as WAV in the source's
    sample format. Missing sources are warned about and skipped.
    Returns (written paths, problems).
    """
    groups, problems = _clamped(table, audio_dir)
    written = []
    for src, info, rows in groups:
        try:
            wav, sr = read_audio(src)
        except AudioError as err:
            problems.append(str(err))
            log.warning("skipped: %s", err)
            continue
        data = wav.numpy().T  # [samples, channels]
        subtype = info.subtype if sf.check_format("WAV", info.subtype) else None
        for n, start, end in zip(rows["n"], rows["start"], rows["end"]):
            target = os.path.join(out_dir, rows["folder"].iloc[0], segment_file_name(src, n, "_seg_"))
            _write_audio(target, data[start:end], sr, subtype=subtype)
            written.append(target)
    return written, problems
