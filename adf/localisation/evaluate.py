"""Score a localisation run: segment scores (`adf detect --resolution`) against a manifest's regions.

    python tools/score_localisation.py seg.csv --key data/test.csv

The segment CSV (`id,start,end,score`) is read at its own resolution R0 (the
length of its first segment); the segment-level EER at each coarser
resolution R (a multiple of R0) scores segment j of R by the lowest R0 segment
inside it (`--aggregate`, as `adf detect --segment-aggregate`), so one run at
0.02 s gives every PartialSpoof resolution. The range-based EER and the
fake-region precision/recall/F1 use the R0 scores; the regions called fake are
the runs of R0 segments scoring below `threshold` (`threshold="eer"`: the
operating point of the R0 segment-level EER, where segments scoring at or
below the EER threshold are fake; for an uncalibrated model whose scores are
not centred on 0). Each utterance's duration is
the end of its last segment (from the audio header); its reference regions are
the manifest's (adf.localisation.regions.row_regions: an empty FakeRegions cell
on a fake row = fake throughout).
"""
from __future__ import annotations

import numpy as np

from adf.localisation import metrics
from adf.localisation.regions import EPS, row_regions
from adf.localisation.scores import fake_regions, segment_scores


def read_segment_scores(path):
    """{id: (duration, resolution, scores)} of a segment CSV, segments in time order."""
    import pandas as pd

    df = pd.read_csv(path, dtype={"id": str}, keep_default_na=False)
    missing = {"id", "start", "end", "score"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))} (expected id,start,end,score)")
    out = {}
    for utt, g in df.groupby("id", sort=False):
        g = g.sort_values("start")
        resolution = float(g["end"].iloc[0] - g["start"].iloc[0]) if len(g) > 1 else float(g["end"].iloc[0])
        out[utt] = (float(g["end"].iloc[-1]), resolution, g["score"].to_numpy(dtype=np.float64))
    return out


def _is_multiple(r, base):
    k = r / base
    return k >= 1 - EPS and abs(k - round(k)) < 1e-6


def evaluate(segments, key, resolutions=metrics.PARTIALSPOOF_RESOLUTIONS, collar=0.2, threshold=0.0,
             aggregate="min"):
    """Every localisation metric of `segments` (read_segment_scores) against `key`
    (a manifest DataFrame indexed by ID with Label and optional FakeRegions)."""
    ids = [i for i in segments if i in key.index]
    if not ids:
        raise ValueError("no scored utterance is in the key")
    base = {round(segments[i][1], 6) for i in ids if len(segments[i][2]) > 1}
    if len(base) > 1:
        raise ValueError(f"segments of several resolutions: {sorted(base)}")
    base = base.pop() if base else segments[ids[0]][1]
    utts = []
    for i in ids:
        duration, _, scores = segments[i]
        text = key.at[i, "FakeRegions"] if "FakeRegions" in key.columns else ""
        utts.append((scores, row_regions(key.at[i, "Label"], text, duration), duration))
    report = {"n_utterances": len(utts), "n_partial": int(sum(0 < sum(e - s for s, e in r) < d - EPS
                                                            for _, r, d in utts)),
              "resolution": base, "segment_eer": {}, "skipped_resolutions": []}
    for r in resolutions:
        if not _is_multiple(r, base):
            report["skipped_resolutions"].append(r)
            continue
        coarse = [(segment_scores(s, d, r, aggregate, hop=base, field=base), reg, d) for s, reg, d in utts]
        try:
            report["segment_eer"][r] = metrics.segment_eer(coarse, r)[0]
        except ValueError:  # one class only at this resolution
            report["segment_eer"][r] = float("nan")
    report["range_eer"] = metrics.range_eer(utts, base)[0]
    if threshold == "eer":  # fake at or below the EER threshold = below the next float up
        threshold = float(np.nextafter(metrics.segment_eer(utts, base)[1], np.inf))
    refs = [reg for _, reg, _ in utts]
    hyps = [fake_regions(s, base, d, threshold) for s, _, d in utts]
    durations = [d for _, _, d in utts]
    report["threshold"], report["collar"] = threshold, collar
    report["event"] = metrics.event_prf(refs, hyps, collar)
    report["duration"] = metrics.duration_prf(refs, hyps, durations, collar)
    return report


def markdown(report):
    """The report as two Markdown tables (EERs in %, then P/R/F1)."""
    res = list(report["segment_eer"])
    lines = ["| " + " | ".join([f"seg. EER {r * 1000:g} ms" for r in res] + ["range EER"]) + " |",
             "|" + "---:|" * (len(res) + 1),
             "| " + " | ".join(f"{100 * report['segment_eer'][r]:.2f}" for r in res)
             + f" | {100 * report['range_eer']:.2f} |", "",
             f"| fake regions (threshold {report['threshold']:.4g}, collar {report['collar']:g} s) "
             "| precision | recall | F1 |", "|---|---:|---:|---:|"]
    for name in ("event", "duration"):
        m = report[name]
        lines.append(f"| {name}-based | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} |")
    return "\n".join(lines)
