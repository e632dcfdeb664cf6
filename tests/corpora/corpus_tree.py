"""Helpers for the corpus tests: tiny audio files, metadata files and running a preparer."""
from __future__ import annotations

import numpy as np
import soundfile as sf

from adf.data.corpora import build_manifest, get_corpus


def write_audio(path, seconds=0.1, sr=16000, channels=1, subtype=None):
    """Write a short tone of `seconds` at `sr` (format from the extension); returns the path."""
    n = int(round(seconds * sr))
    tone = (0.1 * np.sin(2 * np.pi * 440 * np.arange(n) / sr)).astype(np.float32)
    data = np.tile(tone[:, None], (1, channels)) if channels > 1 else tone
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, subtype=subtype)
    return path


def write_text(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def prepare(name, root, **kwargs):
    """Run a preparer serially: (DataFrame indexed by ID, {where: reason} of the skips)."""
    df, skips = build_manifest(get_corpus(name), root, jobs=1, **kwargs)
    assert df["ID"].is_unique
    return df.set_index("ID", drop=False), {s.where: s.reason for s in skips}
