"""Benchmark the manifest merge (adf/data/merge.py) on generated manifests.

Writes the reference's 29 training + 5 test manifests (`--rows` in total,
default 1 million, with a few duplicate IDs and bad rows mixed in) to a
temporary folder, then times `merge_main` end to end (read, validate, merge,
shuffle, write, summary) and prints one `BENCH merge` line. No thresholds: the
target is under 30 s on 2 cores.

    python -m bench.merge [--rows 1000000] [--keep DIR]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from adf.data.manifest import COLUMNS
from adf.data.merge import TEST_MANIFESTS, TRAIN_MANIFESTS, merge_main
from bench.common import report


def fake_manifest(name, n, rng, test=False):
    """n rows that look like a real corpus manifest (long IDs and paths, mixed splits)."""
    prefix = name.replace("_", "")
    idx = np.arange(n).astype(str)
    ids = np.char.add(f"{prefix}-utt_", np.char.zfill(idx, 8))
    split = rng.choice(["train", "valid", "test", "-"], size=n, p=[0.6, 0.1, 0.2, 0.1])
    df = pd.DataFrame({
        "ID": ids,
        "Label": rng.choice(["real", "fake"], size=n),
        "Duration": np.round(rng.uniform(0.5, 20.0, size=n), 2),
        "SampleRate": rng.choice([16000, 22050, 24000, 44100], size=n),
        "Path": np.char.add(f"$ROOT/{name}/some/deeper/folder/", np.char.add(ids, ".flac")),
        "Attack": rng.choice(["-", "A01", "A07", "hifigan"], size=n),
        "Speaker": np.char.add("spk", (rng.integers(0, 500, size=n)).astype(str)),
        "Proportion": "test" if test else split,
        "AudioChannel": 1,
        "AudioEncoding": "FLAC",
        "AudioBitSample": 16,
        "Language": rng.choice(["EN", "ZH", "JA", "-"], size=n),
    })
    # a few quirks: identical copies, a conflicting duplicate, a missing-file row
    extra = df.iloc[:3].copy()
    extra.iloc[2, extra.columns.get_loc("Label")] = "fake" if extra.iloc[2]["Label"] == "real" else "real"
    df = pd.concat([df, extra], ignore_index=True)
    df.loc[5, "Duration"] = -1
    return df[COLUMNS]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="total rows over all manifests")
    parser.add_argument("--keep", help="write the manifests and outputs here instead of a temp folder")
    args = parser.parse_args(argv)
    names = list(TRAIN_MANIFESTS) + list(TEST_MANIFESTS)
    per = args.rows // len(names)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or tmp
        mdir, out = os.path.join(root, "manifests"), os.path.join(root, "merged")
        os.makedirs(mdir, exist_ok=True)
        t0 = time.perf_counter()
        total = 0
        for name in names:
            df = fake_manifest(name, per, rng, test=name in TEST_MANIFESTS)
            df.to_csv(os.path.join(mdir, f"{name}.csv"), index=False)
            total += len(df)
        t_gen = time.perf_counter() - t0
        size = sum(os.path.getsize(os.path.join(mdir, f)) for f in os.listdir(mdir))
        summary = io.StringIO()
        t0, c0 = time.perf_counter(), time.process_time()
        # the summary and the planted problems' report are the merge's own output, not the benchmark's
        with contextlib.redirect_stdout(summary), contextlib.redirect_stderr(summary):
            merge_main(["--manifests", mdir, "--out", out])
        t_merge, c_merge = time.perf_counter() - t0, time.process_time() - c0
        written = {s: sum(1 for _ in open(os.path.join(out, f"{s}.csv"))) - 1 for s in ("train", "valid", "test")}
        n_problems = sum(1 for _ in open(os.path.join(out, "merge_problems.txt")))
    report("merge", manifests=len(names), rows=total, input_mib=size / 2**20, generate_s=t_gen,
           wall_s=t_merge, cpu_s=c_merge, cpus=os.cpu_count(), load_avg_1m=round(os.getloadavg()[0], 2),
           **{f"{split}_rows": n for split, n in written.items()}, problems=n_problems)
    return 0


if __name__ == "__main__":
    sys.exit(main())
