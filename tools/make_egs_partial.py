#!/usr/bin/env python3
"""Build egs_data/partial/: partially fake clips spliced from the example corpus's own clips.

    python tools/make_egs_partial.py            # (re)writes egs_data/partial/ (seeded: same clips every run)

Each clip is a real clip of the example corpus with one or two stretches of a fake clip of
the same split and channel (so the same sample rate and codec) inserted into it: real
speech up to a point, then 0.4-0.9 s taken from the middle of the fake clip (its level
matched to the real clip's speech), then the rest of the real speech. A 5 ms fade on each
side of every junction avoids clicks without blurring the boundary. The inserted stretches
are the clip's fake regions, written in the manifest scheme (`fake_regions`, docs/data.md).
Splits follow the real clip, so the corpus stays speaker- and text-disjoint by split; the
held-out generator (piper) is inserted only in the test split, where it lives.
"""
import argparse
import runpy
import sys
from pathlib import Path

# A python without adf's environment re-runs this under the checkout's .venv, where adf
# is installed (tools/setup_env.sh); adf/environment.py is standard library only.
runpy.run_path(str(Path(__file__).resolve().parents[1] / "adf" / "environment.py"))["use_repo_environment"]()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import soundfile as sf  # noqa: E402

from adf.localisation.regions import format_regions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "egs_data"
COUNTS = {"train": 12, "valid": 4, "test": 8}  # spliced clips per split
TWO_INSERTS_EVERY = 3  # every third clip gets a second insert
INSERT_S = (0.4, 0.9)
EDGE_S = 0.3  # inserts start at least this far from either end of the real clip
FADE_S = 0.005
COLUMNS = ["file", "label", "speaker", "split", "source", "attack", "language", "channel", "fake_regions",
           "base", "inserts"]


def rms(x):
    active = x[np.abs(x) > 0.1 * np.abs(x).max()] if np.abs(x).max() > 0 else x
    return float(np.sqrt(np.mean(active ** 2))) if active.size else 0.0


def fade(x, sr):
    n = min(int(FADE_S * sr), len(x) // 2)
    ramp = np.linspace(0.0, 1.0, n, endpoint=False)
    x = x.copy()
    x[:n] *= ramp
    x[len(x) - n:] *= ramp[::-1]
    return x


def splice(real, sr, fakes, rng):
    """`real` with a stretch of each array in `fakes` inserted: (audio, [(start, end)] seconds)."""
    cuts = np.sort(rng.uniform(EDGE_S, len(real) / sr - EDGE_S, size=len(fakes)))
    pieces, regions, at, t = [], [], 0, 0.0
    for cut, fake in zip(cuts, fakes):
        cut = int(cut * sr)
        length = min(int(rng.uniform(*INSERT_S) * sr), len(fake) - int(0.3 * sr))
        begin = (len(fake) - length) // 2
        chunk = fake[begin:begin + length] * (rms(real) / max(rms(fake), 1e-9))
        head = real[at:cut]
        pieces += [fade(head, sr), fade(chunk, sr)]
        t += len(head) / sr
        regions.append((t, t + len(chunk) / sr))
        t += len(chunk) / sr
        at = cut
    pieces.append(fade(real[at:], sr))
    out = np.concatenate(pieces)
    peak = np.abs(out).max()
    return (out * (0.9 / peak) if peak >= 0.9 else out), regions


def build(root, seed):
    meta = pd.read_csv(root / "metadata.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    out_dir = root / "partial"
    rows = []
    for split, count in COUNTS.items():
        real = meta[(meta.split == split) & (meta.label == "real")].sort_values("file")
        fake = meta[(meta.split == split) & (meta.label == "fake")].sort_values("file")
        chosen = real.iloc[rng.choice(len(real), size=count, replace=False)]
        for n, row in enumerate(chosen.itertuples()):
            x, sr = sf.read(root / row.file, dtype="float64")
            pool = fake[fake.channel == row.channel]
            picks = pool.iloc[rng.choice(len(pool), size=2 if n % TWO_INSERTS_EVERY == 0 else 1, replace=False)]
            fakes = []
            for p in picks.itertuples():
                y, fsr = sf.read(root / p.file, dtype="float64")
                assert fsr == sr, (p.file, fsr, sr)
                fakes.append(y)
            audio, regions = splice(x, sr, fakes, rng)
            name = f"partial/{split}/{Path(row.file).stem}_spliced.flac"
            (out_dir / split).mkdir(parents=True, exist_ok=True)
            sf.write(root / name, audio.astype(np.float32), sr, subtype="PCM_16")
            rows.append({"file": name, "label": "fake", "speaker": row.speaker, "split": split,
                         "source": "splice", "attack": "+".join(sorted(set(picks.attack))),
                         "language": row.language, "channel": row.channel,
                         "fake_regions": format_regions(regions), "base": row.file,
                         "inserts": ";".join(picks.file)})
    pd.DataFrame(rows, columns=COLUMNS).to_csv(out_dir / "metadata.csv", index=False)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(ROOT), help="the example corpus (default %(default)s)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    rows = build(Path(args.root), args.seed)
    print(f"wrote {len(rows)} spliced clips and {Path(args.root) / 'partial' / 'metadata.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
