"""Benchmark the scorer: 10 million trials, pooled + 20 subsets, in one run.

Times (1) EER + minDCF + ROC AUC from one DET curve per group and (2) the
full row of metrics that `tools/score_eer.py` prints (adds actDCF, Cllr,
minCllr and the decision metrics), then a straightforward pandas
implementation that walks the sorted trials row by row (`iterrows`). The
naive one is far too slow for 10 M trials, so it runs on a random
subsample and its time is extrapolated linearly per trial (its sort is
n log n, so the extrapolation slightly favours it). Also reports the
ID-prefix extraction cost and the peak resident memory. Times are wall
clock, with the process CPU time beside them (less sensitive to a machine
shared with other jobs). One `BENCH score` line per measurement.

    python -m bench.score [--n 10000000] [--subsets 20] [--naive-n 20000]
"""
import argparse
import resource
import sys
import time

import numpy as np
import pandas as pd

from adf import metrics, scoring
from bench.common import report


def make_trials(n, n_subsets, seed=0):
    """Synthetic trials: per-subset shift, 1 decimal of rounding on some subsets (ties)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, n_subsets, n).astype(np.int16)
    label = rng.random(n) < 0.3
    score = rng.standard_normal(n) + label * (1.0 + group / n_subsets)
    coarse = group % 4 == 0
    score[coarse] = np.round(score[coarse], 1)
    names = np.array([f"SET{g:02d}" for g in range(n_subsets)])
    return pd.DataFrame({
        "score": score,
        "prob_real": metrics.sigmoid(score),
        "label": label.astype(np.int8),
        "group": pd.Categorical.from_codes(group, names),
    })


def fast_core(trials):
    """EER, minDCF and AUC for Pooled + each subset (one DET curve per group)."""
    s = trials["score"].to_numpy()
    y = trials["label"].to_numpy().astype(bool)
    out = {}
    for name, idx in scoring.groups(trials):
        curve = metrics.det_curve(s[idx], y[idx])
        out[name] = (metrics.eer_from_curve(curve)[0], metrics.min_dcf_from_curve(curve)[0],
                     metrics.auc_from_curve(curve))
    return out


def naive_core(trials):
    """The straightforward way: sort each group with pandas and walk it row by row."""
    out = {}
    subsets = [("Pooled", trials)] + [(str(g), d) for g, d in trials.groupby("group", observed=True)]
    for name, df in subsets:
        df = df.sort_values("score")
        n_real = int((df["label"] == 1).sum())
        n_fake = len(df) - n_real
        real_below = fake_below = 0
        best_gap, eer = 2.0, None
        min_cost = 0.95 * 0.0 + 0.5 * 1.0
        auc = 0.0
        prev_far, prev_tpr = 1.0, 1.0
        rows = list(df.iterrows())
        for i, (_, row) in enumerate(rows):
            if row["label"] == 1:
                real_below += 1
            else:
                fake_below += 1
            if i + 1 < len(rows) and rows[i + 1][1]["score"] == row["score"]:
                continue  # a threshold cannot split tied scores
            frr = real_below / n_real
            far = (n_fake - fake_below) / n_fake
            if abs(frr - far) < best_gap:
                best_gap, eer = abs(frr - far), (frr + far) / 2
            min_cost = min(min_cost, 0.95 * frr + 0.5 * far)
            auc += (prev_far - far) * (prev_tpr + (1 - frr)) / 2
            prev_far, prev_tpr = far, 1 - frr
        out[name] = (eer, min_cost / 0.5, auc)
    return out


class Timer:
    """Wall-clock and process CPU seconds of a `with` block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def __str__(self):
        return f"{self.wall:7.2f} s wall, {self.cpu:7.2f} s CPU"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--subsets", type=int, default=20)
    parser.add_argument("--naive-n", type=int, default=20_000)
    args = parser.parse_args(argv)

    trials = make_trials(args.n, args.subsets)
    size = dict(trials=args.n, subsets=args.subsets)
    with Timer() as core:
        fast = fast_core(trials)
    report("score", what="eer_mindcf_auc", **size, wall_s=core.wall, cpu_s=core.cpu)
    with Timer() as full:
        rows = scoring.score_rows("bench", trials)
    report("score", what="full_rows_14_metrics", **size, wall_s=full.wall, cpu_s=full.cpu)
    assert rows[0]["eer"] == fast["Pooled"][0]

    n_ids = min(args.n, 1_000_000)
    ids = pd.Series(trials["group"].astype(str).to_numpy()[:n_ids]) + "-" + pd.Series(np.arange(n_ids).astype(str))
    with Timer() as prefix:
        scoring.subset_codes(pd.DataFrame({"id": ids}))
    scale = args.n / n_ids  # timed on n_ids string IDs, scaled per trial
    report("score", what="id_prefix_grouping", **size, timed_ids=n_ids, wall_s=prefix.wall * scale,
           cpu_s=prefix.cpu * scale)
    del ids
    report("score", what="peak_memory", **size,
           peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)

    sub = trials.sample(n=args.naive_n, random_state=0).reset_index(drop=True)
    with Timer() as slow:
        naive = naive_core(sub)
    scale = args.n / args.naive_n  # measured on the subsample, extrapolated linearly per trial
    check = fast_core(sub)
    assert all(np.allclose(naive[k], check[k]) for k in check), "naive and fast disagree"
    report("score", what="naive_iterrows_extrapolated", **size, timed_trials=args.naive_n,
           wall_s=slow.wall * scale, cpu_s=slow.cpu * scale, agrees=True,
           speedup_wall=slow.wall * scale / core.wall, speedup_cpu=slow.cpu * scale / core.cpu)
    return 0


if __name__ == "__main__":
    sys.exit(main())
