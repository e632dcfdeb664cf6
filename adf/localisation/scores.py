"""Score sequences: from a detector's frame scores to segment scores and fake regions.

A frame score is `logit_real - logit_fake` of one backbone frame (higher =
more likely real, as every adf score). Segment k of resolution R covers
[kR, (k+1)R) (adf.localisation.regions); its score is the lowest (most fake)
score of the frames whose centre lies in it (`aggregate="min"`, the natural
pair of PartialSpoof's "any fake part makes the segment fake" labels) or
their mean. A segment no frame centre falls in (finer than the frame hop, or
the tail of the audio) takes the frame nearest to its centre.
"""
from __future__ import annotations

import numpy as np

from adf.localisation.regions import FRAME_FIELD, FRAME_HOP, frame_centres, regions_from_mask, segment_bounds

AGGREGATES = ("min", "mean")


def segment_scores(frame_scores, duration, resolution, aggregate="min", hop=FRAME_HOP, field=FRAME_FIELD):
    """Scores of the segments of `resolution` seconds from per-frame scores."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, not {aggregate!r}")
    frame_scores = np.asarray(frame_scores, dtype=np.float64)
    if frame_scores.size == 0:
        raise ValueError("no frame scores (audio shorter than one frame)")
    starts, ends = segment_bounds(duration, resolution)
    centres = frame_centres(frame_scores.size, hop, field)
    # frames [first[k], last[k]) have their centre in segment k
    first = np.searchsorted(centres, starts, side="left")
    last = np.searchsorted(centres, ends, side="left")
    out = np.empty(len(starts))
    for k, (a, b) in enumerate(zip(first, last)):
        if b > a:
            chunk = frame_scores[a:b]
            out[k] = chunk.min() if aggregate == "min" else chunk.mean()
        else:
            out[k] = frame_scores[int(np.argmin(np.abs(centres - (starts[k] + ends[k]) / 2)))]
    return out


def fake_regions(scores, resolution, duration, threshold=0.0):
    """Regions where the segment scores say fake (score < threshold, i.e. not real)."""
    return regions_from_mask(np.asarray(scores) < threshold, resolution, duration)


def rttm_lines(file_id, regions, label="fake"):
    """RTTM lines (NIST): `SPEAKER <file> 1 <onset> <duration> <NA> <NA> <label> <NA> <NA>`."""
    return [f"SPEAKER {file_id} 1 {s:.3f} {e - s:.3f} <NA> <NA> {label} <NA> <NA>"
            for s, e in regions]


def read_rttm(path):
    """{file id: [(start, end)]} of an RTTM file (every SPEAKER line, any label)."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for no, line in enumerate(fh, 1):
            f = line.split()
            if not f:
                continue
            if f[0] != "SPEAKER" or len(f) < 5:
                raise ValueError(f"{path}:{no}: not an RTTM SPEAKER line: {line.strip()!r}")
            start, dur = float(f[3]), float(f[4])
            out.setdefault(f[1], []).append((start, start + dur))
    return out
