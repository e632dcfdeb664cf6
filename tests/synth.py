"""Small generated audio and manifests for tests (no data is downloaded)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from adf.data.manifest import COLUMNS

ROOT = Path(__file__).resolve().parents[1]  # the repository


def write_tone(path, seconds=1.0, sr=16000, channels=1, freq=220.0, noise=0.05, seed=0, subtype=None):
    """A tone plus noise; real/fake test corpora differ by `freq`/`noise`."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t) + noise * rng.standard_normal(len(t))
    data = np.stack([x * (0.5 + 0.5 * c) for c in range(channels)], axis=1) if channels > 1 else x
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    sf.write(path, data.astype(np.float32), sr, subtype=subtype)
    return path


def write_noise(path, seconds, sr=16000, channels=1, seed=0):
    """White noise (std 0.1) of `seconds` at `sr`; creates the folder; returns the path as text."""
    rng = np.random.default_rng(seed)
    data = (0.1 * rng.standard_normal((int(seconds * sr), channels))).astype("float32")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    sf.write(path, data if channels > 1 else data[:, 0], sr)
    return str(path)


def write_manifest(path, rows, **defaults):
    """A 12-column manifest at `path` (returned as text). Each row is a dict of
    the columns it sets (Start/Stop too); the others are `defaults`, else "-"
    with Label real, Duration 1.0, SampleRate 16000, AudioChannel 1."""
    base = dict.fromkeys(COLUMNS, "-")
    base.update(Label="real", Duration=1.0, SampleRate=16000, AudioChannel=1)
    base.update(defaults)
    pd.DataFrame([{**base, **row} for row in rows]).to_csv(path, index=False)
    return str(path)


def manifest_row(id_, label, path, seconds, sr=16000, channels=1, proportion="train"):
    return dict(ID=id_, Label=label, Duration=round(seconds, 2), SampleRate=sr, Path=path,
                Attack="-", Speaker="-", Proportion=proportion, AudioChannel=channels,
                AudioEncoding="PCM_S", AudioBitSample=16, Language="-")


def toy_corpus(root, n_per_split=(24, 8, 8), seed=0):
    """Separable real (tone) / fake (noise) clips of 0.6-1.4 s with manifests
    `root/data/{train,valid,test}.csv` whose paths use the $ROOT placeholder."""
    rng = np.random.default_rng(seed)
    frames = {}
    for split, n in zip(("train", "valid", "test"), n_per_split):
        rows = []
        for i in range(n):
            label = "real" if i % 2 else "fake"
            sr = (16000, 8000, 22050)[i % 3]
            sec = float(rng.uniform(0.6, 1.4))
            rel = f"audio/{split}_{i}.wav"
            write_tone(os.path.join(root, rel), sec, sr,
                       freq=300.0 if label == "real" else 0.0,
                       noise=0.02 if label == "real" else 0.3, seed=int(rng.integers(1 << 30)))
            rows.append(manifest_row(f"TOY-{split}{i}", label, f"$ROOT/{rel}", sec, sr, proportion=split))
        frames[split] = pd.DataFrame(rows, columns=COLUMNS)
        os.makedirs(os.path.join(root, "data"), exist_ok=True)
        frames[split].to_csv(os.path.join(root, "data", f"{split}.csv"), index=False)
    return frames


def tiny_train_argv(root, out, *extra):
    """argv of adf.train.main: the tiny model on a `toy_corpus` under `root`, writing to
    `out`, without a progress bar, plus `extra` options."""
    return [str(ROOT / "recipes" / "posttrain" / "hparams" / "tiny.yaml"), "--data_folder", str(root),
            "--manifest_folder", str(Path(root) / "data"), "--output_folder", str(out), "--noprogressbar",
            *map(str, extra)]


def padded_batch(lengths, seed=0):
    """A zero-padded batch of white-noise waveforms [B, max(lengths)] and their lengths."""
    g = torch.Generator().manual_seed(seed)
    wav = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        wav[i, :n] = torch.randn(n, generator=g)
    return wav, torch.tensor(lengths)
