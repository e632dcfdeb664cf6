"""Localisation metrics: how well fake regions are found inside utterances.

Conventions as in adf.metrics: label 1 = real, 0 = fake; higher score = more
likely real; a segment is called real when its score is strictly greater
than the threshold. Each utterance is `(scores, regions, duration)`: segment
scores at a resolution R (segment k = [kR, (k+1)R), adf.localisation.regions),
its reference fake regions [(start, end)] in seconds and its length in seconds.

* **Segment-level (point-based) EER** (PartialSpoof, Zhang et al., TASLP 2023):
  every segment of every utterance is one trial, labelled by
  `segment_labels` (fake when any part is fake), pooled over utterances. It
  depends on R: a coarse segment with a little fake in it counts as wholly fake.
* **Range-based EER** (Zhang et al., "Range-Based Equal Error Rate for Spoof
  Localization", Interspeech 2023): errors are measured in time against the
  exact reference boundaries. At threshold t the miss rate is the fake
  duration called real over the total fake duration and the false-alarm rate
  the real duration called fake over the total real duration (all
  utterances pooled, the whole of each utterance scored); the range EER is
  where they meet. Both rates are step functions of t that change only at
  score values, so adf computes the curve exactly with one sort (each
  segment is a fake trial weighted by its fake seconds and a real trial
  weighted by its real seconds); the published code bisects over thresholds.
* **Fake-region precision/recall/F1 with a collar**, at a fixed threshold:
  event-based (the sound-event-detection convention of sed_eval): a predicted
  region matches a reference region when both its onset and its offset lie
  within `collar` seconds of the reference's; each region matches at most
  once (maximum matching); and duration-based: fake seconds found / called /
  present, with `collar` seconds on either side of every reference boundary
  inside the utterance left unscored (the NIST diarization no-score collar).
"""
from __future__ import annotations

import numpy as np

from adf.localisation.regions import EPS, fake_overlap, merge_regions, segment_bounds, segment_labels

PARTIALSPOOF_RESOLUTIONS = (0.02, 0.04, 0.08, 0.16, 0.32, 0.64)


def weighted_eer(scores, labels, weights=None):
    """(EER, threshold) of trials with non-negative weights (all 1: the plain EER).

    The tie-exact DET curve of adf.metrics with weighted counts: thresholds sit
    between distinct scores; FRR = real weight at or below t / real weight,
    FAR = fake weight above t / fake weight; the EER is the mean of the two at
    the point where they differ least (lowest threshold on a tie).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if not (s.shape == y.shape == w.shape):
        raise ValueError(f"{s.size} scores, {y.size} labels and {w.size} weights")
    if not np.isfinite(s).all():
        raise ValueError("non-finite score(s) (NaN/inf)")
    if (w < 0).any():
        raise ValueError("negative weight")
    real_w, fake_w = w[y].sum(), w[~y].sum()
    if real_w <= 0 or fake_w <= 0:
        missing = "real" if real_w <= 0 else "fake"
        raise ValueError(f"no {missing} trials (or only zero weights): the EER needs both classes")
    values, index = np.unique(s, return_inverse=True)
    real_at = np.bincount(index, weights=np.where(y, w, 0.0), minlength=values.size)
    fake_at = np.bincount(index, weights=np.where(y, 0.0, w), minlength=values.size)
    frr = np.concatenate(([0.0], np.cumsum(real_at))) / real_w
    far = 1.0 - np.concatenate(([0.0], np.cumsum(fake_at))) / fake_w
    thresholds = np.concatenate(([-np.inf], values))
    i = int(np.argmin(np.abs(frr - far)))
    return float((frr[i] + far[i]) / 2), float(thresholds[i])


def _checked(utterances, resolution):
    for n, (scores, _regions, duration) in enumerate(utterances):
        expected = len(segment_bounds(duration, resolution)[0])
        if len(scores) != expected:
            raise ValueError(f"utterance {n}: {len(scores)} segment scores, but {duration:g} s at "
                             f"{resolution:g} s make {expected} segments")
        yield np.asarray(scores, dtype=np.float64), merge_regions(_regions), float(duration)


def segment_eer(utterances, resolution, rule="any"):
    """Point-based segment-level EER at `resolution`: (EER, threshold)."""
    scores, labels = [], []
    for s, regions, duration in _checked(utterances, resolution):
        scores.append(s)
        labels.append(segment_labels(regions, duration, resolution, rule))
    return weighted_eer(np.concatenate(scores), np.concatenate(labels))


def range_eer(utterances, resolution):
    """Range-based EER (module docstring) of segment scores at `resolution`: (EER, threshold)."""
    scores, labels, weights = [], [], []
    for s, regions, duration in _checked(utterances, resolution):
        starts, ends = segment_bounds(duration, resolution)
        fake = fake_overlap(regions, starts, ends)
        real = np.clip((ends - starts) - fake, 0.0, None)
        scores += [s, s]
        labels += [np.ones(s.size, bool), np.zeros(s.size, bool)]
        weights += [real, fake]
    return weighted_eer(np.concatenate(scores), np.concatenate(labels), np.concatenate(weights))


def _ratio(num, den):
    return float(num / den) if den > 0 else float("nan")


def _prf(tp, fp, fn):
    return {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn), "f1": _ratio(2 * tp, 2 * tp + fp + fn)}


def event_prf(references, predictions, collar=0.2):
    """Event-based precision/recall/F1 of fake regions (module docstring), pooled.

    `references`, `predictions`: per utterance, lists of (start, end).
    Returns {"tp", "fp", "fn", "precision", "recall", "f1"} (counts of regions).
    """
    from scipy.optimize import linear_sum_assignment

    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} reference and {len(predictions)} predicted utterances")
    tp = n_ref = n_hyp = 0
    for ref, hyp in zip(references, predictions):
        ref, hyp = merge_regions(ref), merge_regions(hyp)
        n_ref, n_hyp = n_ref + len(ref), n_hyp + len(hyp)
        if not ref or not hyp:
            continue
        r, h = np.array(ref), np.array(hyp)
        ok = ((np.abs(r[:, None, 0] - h[None, :, 0]) <= collar + EPS)
              & (np.abs(r[:, None, 1] - h[None, :, 1]) <= collar + EPS))
        rows, cols = linear_sum_assignment(-ok.astype(float))
        tp += int(ok[rows, cols].sum())
    out = {"tp": tp, "fp": n_hyp - tp, "fn": n_ref - tp}
    out.update(_prf(tp, n_hyp - tp, n_ref - tp))
    return out


def _covered(regions, t):
    """Whether each time in `t` lies inside one of `regions`."""
    inside = np.zeros(len(t), dtype=bool)
    for s, e in regions:
        inside |= (t >= s) & (t < e)
    return inside


def duration_prf(references, predictions, durations, collar=0.0):
    """Duration-based precision/recall/F1 of fake speech (module docstring), pooled.

    Returns {"tp", "fp", "fn" (seconds), "precision", "recall", "f1"}. The time
    line of each utterance is cut at every boundary (reference, prediction,
    collar edges), so the durations are exact.
    """
    if not (len(references) == len(predictions) == len(durations)):
        raise ValueError("references, predictions and durations differ in length")
    tp = fp = fn = 0.0
    for ref, hyp, duration in zip(references, predictions, durations):
        ref, hyp = merge_regions(ref), merge_regions(hyp)
        inner = sorted({t for region in ref for t in region if EPS < t < duration - EPS})
        skip = [(max(0.0, t - collar), min(duration, t + collar)) for t in inner] if collar > 0 else []
        cuts = {0.0, float(duration)} | {t for region in ref + hyp + skip for t in region}
        cuts = np.array(sorted(c for c in cuts if 0.0 <= c <= duration))
        mid, length = (cuts[1:] + cuts[:-1]) / 2, np.diff(cuts)
        scored = ~_covered(skip, mid)
        r, h = _covered(ref, mid) & scored, _covered(hyp, mid) & scored
        tp += float(length[r & h].sum())
        fp += float(length[~r & h].sum())
        fn += float(length[r & ~h].sum())
    out = {"tp": tp, "fp": fp, "fn": fn}
    out.update(_prf(tp, fp, fn))
    return out
