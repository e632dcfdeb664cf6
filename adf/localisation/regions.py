"""Fake regions of an utterance and the labels derived from them.

The manifest scheme (docs/data.md, "Fake regions"): an optional column
`FakeRegions` holds the fake parts of a row's audio as `start-end` pairs in
seconds from the start of that audio (the row's `Start` when it is a segment),
separated by `;`, e.g. `0.480-1.120;2.300-2.760`. An empty cell means "no
region information": a `real` row is real throughout and a `fake` row is fake
throughout (the whole-utterance corpora). A row with regions is partially fake
and carries Label `fake`.

Everything else is derived from the regions, so one annotation serves every
resolution:

* segment labels at a resolution R (`segment_labels`): segment k covers
  [kR, (k+1)R), the last one ends with the audio (ceil(duration / R)
  segments). PartialSpoof's convention is the default: a segment is fake when
  **any** part of it is fake (rule "any"); rule "majority" calls it fake when
  more than half of it is;
* frame targets at the backbone's frame rate (`frame_targets`): frame i of a
  wav2vec 2.0 CNN sees samples [320 i, 320 i + 400) at 16 kHz (20 ms hop,
  25 ms field); it is fake when its centre lies in a fake region;
* back from scores: the runs of fake segments are regions again
  (`regions_from_mask`).

Label values follow the detector's targets: 1 = real, 0 = fake.
"""
from __future__ import annotations

import math

import numpy as np

# Tolerance for comparing times in seconds (float rounding of region ends).
EPS = 1e-9


class RegionError(ValueError):
    """A `FakeRegions` value that cannot be read."""


def parse_regions(text):
    """`"s-e;s-e"` -> sorted, merged [(start, end)] in seconds ([] for an empty cell).

    Raises RegionError naming the bad pair: not two numbers, negative, or end <= start.
    Overlapping or touching pairs are merged (an annotation may list them in any order).
    """
    if not isinstance(text, str):  # None, or NaN from a table cell
        return []
    text = text.strip()
    if not text:
        return []
    regions = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        # split on the "-" between the numbers (neither may be negative, so no sign to confuse)
        bits = part.split("-")
        try:
            if len(bits) != 2:
                raise ValueError
            start, end = float(bits[0]), float(bits[1])
        except ValueError:
            raise RegionError(f"fake region {part!r} is not 'start-end' in seconds") from None
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
            raise RegionError(f"fake region {part!r}: need 0 <= start < end")
        regions.append((start, end))
    return merge_regions(regions)


def merge_regions(regions):
    """Sorted union of [(start, end)]: overlapping or touching regions become one."""
    merged = []
    for start, end in sorted(regions):
        if merged and start <= merged[-1][1] + EPS:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def format_regions(regions):
    """[(start, end)] -> the `FakeRegions` cell (millisecond precision)."""
    return ";".join(f"{s:.3f}-{e:.3f}" for s, e in merge_regions(regions))


def row_regions(label, text, duration):
    """The fake regions of a manifest row: its `FakeRegions`, or when that is
    empty, none for a real row and the whole row for a fake one. Regions are
    clipped to [0, duration]."""
    regions = parse_regions(text)
    if not regions:
        return [(0.0, float(duration))] if label == "fake" else []
    clipped = [(s, min(e, duration)) for s, e in regions if s < duration]
    return [(s, e) for s, e in clipped if e > s]


def segment_count(duration, resolution):
    """Segments of `resolution` seconds covering `duration` (the last may be shorter)."""
    if resolution <= 0:
        raise ValueError(f"resolution must be > 0 (got {resolution})")
    return max(1, math.ceil(duration / resolution - EPS))


def segment_bounds(duration, resolution):
    """(starts, ends) of the segments of `segment_labels`, in seconds."""
    n = segment_count(duration, resolution)
    starts = np.arange(n) * resolution
    ends = np.minimum(starts + resolution, duration)
    return starts, ends


def fake_overlap(regions, starts, ends):
    """Seconds of fake speech inside each interval [starts[k], ends[k])."""
    out = np.zeros(len(starts))
    for s, e in regions:
        out += np.clip(np.minimum(ends, e) - np.maximum(starts, s), 0.0, None)
    return out


def segment_labels(regions, duration, resolution, rule="any"):
    """Labels (1 real, 0 fake) of the segments of `resolution` seconds (module docstring)."""
    starts, ends = segment_bounds(duration, resolution)
    fake = fake_overlap(regions, starts, ends)
    if rule == "any":
        is_fake = fake > EPS
    elif rule == "majority":
        is_fake = fake > (ends - starts) / 2 + EPS
    else:
        raise ValueError(f"rule must be 'any' or 'majority', not {rule!r}")
    return (~is_fake).astype(np.int64)


# The wav2vec 2.0 CNN (every paper backbone and `tiny`): 20 ms hop, 25 ms field at 16 kHz.
FRAME_HOP = 0.02
FRAME_FIELD = 0.025


def frame_count(n_samples, conv_layers):
    """Frames a CNN of `conv_layers` [(channels, kernel, stride)] makes of `n_samples`."""
    n = int(n_samples)
    for _, kernel, stride in conv_layers:
        n = (n - kernel) // stride + 1
    return max(n, 0)


def frame_centres(n_frames, hop=FRAME_HOP, field=FRAME_FIELD):
    """Centre of each frame in seconds."""
    return np.arange(n_frames) * hop + field / 2


def frame_targets(regions, n_frames, hop=FRAME_HOP, field=FRAME_FIELD):
    """Targets (1 real, 0 fake) of `n_frames` backbone frames: fake when the frame's centre is."""
    centres = frame_centres(n_frames, hop, field)
    fake = np.zeros(n_frames, dtype=bool)
    for s, e in regions:
        fake |= (centres >= s) & (centres < e)
    return (~fake).astype(np.int64)


def regions_from_mask(fake, resolution, duration=None):
    """Runs of True in `fake` (one flag per segment of `resolution` s) -> [(start, end)],
    the last end clipped to `duration`."""
    fake = np.asarray(fake, dtype=bool)
    if fake.size == 0:
        return []
    edges = np.diff(np.concatenate(([0], fake.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = []
    for a, b in zip(starts, ends):
        end = b * resolution if duration is None else min(b * resolution, duration)
        out.append((a * resolution, end))
    return out
