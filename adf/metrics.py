"""Detection metrics for bona fide (real) vs spoof (fake) scores.

Conventions (DESIGN.md §4, ASVspoof): label 1 = real = target class, and a
higher score means more likely real. Every function takes plain arrays
(numpy, lists, CPU tensors) of scores and 0/1 labels and refuses NaN/inf
scores or a missing class with a ValueError, so a wrong number is never
returned silently.

The threshold-free metrics (EER, minDCF, ROC AUC) share one sorted detection
error trade-off (DET) curve, computed with a single sort. Tied scores are
handled exactly: a threshold can only fall between distinct score values, so
the curve has one operating point per distinct score (plus "accept all"),
never points that split a group of equal scores. A trial is accepted as real
when its score is strictly greater than the threshold of an operating point.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ASVspoof 5 track 1 detection cost parameters (evaluation plan, §4).
P_SPOOF = 0.05
C_MISS = 1.0
C_FA = 10.0


@dataclass(frozen=True)
class DetCurve:
    """Operating points, from "accept all" (threshold -inf) upwards.

    At point i a trial is called real when its score > `thresholds[i]`;
    `frr[i]` is the fraction of real trials rejected (miss rate) and
    `far[i]` the fraction of fake trials accepted (false alarm rate).
    """

    frr: np.ndarray
    far: np.ndarray
    thresholds: np.ndarray
    n_real: int
    n_fake: int


def check_scores(scores, labels):
    """Return (scores float64, labels bool) after validating them.

    Raises ValueError for mismatched lengths, labels other than 0/1,
    NaN or infinite scores, or a missing class.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    if y.dtype != bool:
        if not np.isin(y, (0, 1)).all():
            bad = np.flatnonzero(~np.isin(y, (0, 1)))[:5]
            raise ValueError(f"labels must be 0 (fake) or 1 (real); got {y[bad].tolist()} at positions {bad.tolist()}")
        y = y == 1
    finite = np.isfinite(s)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(f"{bad.size} non-finite score(s) (NaN/inf), first at positions {bad[:5].tolist()}")
    n_real = int(y.sum())
    if n_real == 0 or n_real == y.size:
        missing = "real (label 1)" if n_real == 0 else "fake (label 0)"
        raise ValueError(f"no {missing} trials among {y.size}: EER/DCF need both classes")
    return s, y


def det_curve(scores, labels) -> DetCurve:
    """The tie-exact DET curve of `scores` (one sort, vectorised)."""
    s, y = check_scores(scores, labels)
    order = np.argsort(s)
    s = s[order]
    y = y[order]
    del order
    n = s.size
    n_real = int(y.sum())
    n_fake = n - n_real
    # Last index of each group of equal scores: only there can a threshold sit.
    ends = np.flatnonzero(s[1:] != s[:-1])
    ends = np.append(ends, n - 1)
    real_at_or_below = np.cumsum(y, dtype=np.int64)[ends]
    fake_at_or_below = (ends + 1) - real_at_or_below
    frr = np.concatenate(([0.0], real_at_or_below / n_real))
    far = np.concatenate(([1.0], (n_fake - fake_at_or_below) / n_fake))
    thresholds = np.concatenate(([-np.inf], s[ends]))
    return DetCurve(frr, far, thresholds, n_real, n_fake)


def eer_from_curve(curve: DetCurve):
    """(EER, threshold) at the operating point where |FRR - FAR| is smallest.

    As in the ASVspoof evaluation code, the EER is the mean of FRR and FAR at
    that point (they differ when the curve jumps over the crossing); the
    first such point (lowest threshold) wins a tie.
    """
    i = int(np.argmin(np.abs(curve.frr - curve.far)))
    return float((curve.frr[i] + curve.far[i]) / 2), float(curve.thresholds[i])


def compute_eer(scores, labels):
    """Equal error rate and its threshold: `(eer, threshold)`, eer in [0, 1].

    labels: 1 = real (target), 0 = fake; higher score = more real. Trials
    with score > threshold are called real at the EER operating point.
    """
    return eer_from_curve(det_curve(scores, labels))


def dcf_default(p_spoof=P_SPOOF, c_miss=C_MISS, c_fa=C_FA):
    """Cost of the best fixed decision (accept all or reject all): the DCF normaliser."""
    return min(c_miss * (1 - p_spoof), c_fa * p_spoof)


def min_dcf_from_curve(curve: DetCurve, p_spoof=P_SPOOF, c_miss=C_MISS, c_fa=C_FA):
    """(normalised minDCF, threshold): ASVspoof 5's cost minimised over thresholds.

    DCF(t) = C_miss (1 - P_spoof) P_miss(t) + C_fa P_spoof P_fa(t), divided
    by `dcf_default` so that 1.0 is no better than a fixed decision.
    """
    cost = c_miss * (1 - p_spoof) * curve.frr + c_fa * p_spoof * curve.far
    i = int(np.argmin(cost))
    return float(cost[i] / dcf_default(p_spoof, c_miss, c_fa)), float(curve.thresholds[i])


def min_dcf(scores, labels, p_spoof=P_SPOOF, c_miss=C_MISS, c_fa=C_FA):
    """Normalised minimum DCF and its threshold (see `min_dcf_from_curve`)."""
    return min_dcf_from_curve(det_curve(scores, labels), p_spoof, c_miss, c_fa)


def bayes_threshold(p_spoof=P_SPOOF, c_miss=C_MISS, c_fa=C_FA):
    """LLR threshold of the Bayes decision: real when LLR >= this value."""
    return float(np.log(c_fa * p_spoof / (c_miss * (1 - p_spoof))))


def act_dcf(llrs, labels, p_spoof=P_SPOOF, c_miss=C_MISS, c_fa=C_FA):
    """Normalised actual DCF: the cost of the Bayes decision on `llrs`.

    Only meaningful when the scores are calibrated log-likelihood ratios
    log p(x|real) / p(x|fake); raw logit differences are not, in general
    (see `fit_calibration`). Real when LLR >= `bayes_threshold`.
    """
    s, y = check_scores(llrs, labels)
    t = bayes_threshold(p_spoof, c_miss, c_fa)
    p_miss = np.count_nonzero(s[y] < t) / np.count_nonzero(y)
    p_fa = np.count_nonzero(s[~y] >= t) / np.count_nonzero(~y)
    cost = c_miss * (1 - p_spoof) * p_miss + c_fa * p_spoof * p_fa
    return float(cost / dcf_default(p_spoof, c_miss, c_fa))


def cllr(llrs, labels):
    """Log-likelihood-ratio cost in bits (0 = perfect, 1 = uninformative at prior 0.5)."""
    s, y = check_scores(llrs, labels)
    return _cllr(s, y)


def _cllr(s, y):
    with np.errstate(over="ignore"):
        real_cost = np.mean(np.logaddexp(0.0, -s[y]))
        fake_cost = np.mean(np.logaddexp(0.0, s[~y]))
    return float((real_cost + fake_cost) / (2 * np.log(2)))


def pav_llrs(scores, labels):
    """Optimally calibrated LLRs: pool-adjacent-violators (isotonic) fit of the labels
    on the scores, turned from posteriors into LLRs by removing the empirical
    prior log-odds. May hold +-inf at the extremes."""
    from sklearn.isotonic import IsotonicRegression

    s, y = check_scores(scores, labels)
    posterior = IsotonicRegression(increasing=True, out_of_bounds="clip").fit_transform(s, y.astype(np.float64))
    n_real = np.count_nonzero(y)
    prior_log_odds = np.log(n_real / (y.size - n_real))
    with np.errstate(divide="ignore"):
        return np.log(posterior) - np.log1p(-posterior) - prior_log_odds


def min_cllr(scores, labels):
    """Cllr after the optimal monotonic calibration (PAV): the discrimination part of Cllr."""
    s, y = check_scores(scores, labels)
    return _cllr(pav_llrs(s, y), y)


def auc_from_curve(curve: DetCurve):
    """Area under the ROC curve (true-real rate against false-real rate).

    Trapezoids between the tie-exact operating points count a tied
    real/fake pair as one half, as the Mann-Whitney statistic does.
    """
    tpr = 1.0 - curve.frr[::-1]
    fpr = curve.far[::-1]
    return float(np.trapezoid(tpr, fpr))


def roc_auc(scores, labels):
    """ROC AUC with real as the positive class."""
    return auc_from_curve(det_curve(scores, labels))


def decision_metrics(prob_real, labels, threshold=0.5):
    """Accuracy, precision, recall, F1, FPR, FNR when calling real at prob_real >= threshold.

    Real is the positive class. Precision is NaN when nothing is called real.
    """
    p, y = check_scores(prob_real, labels)
    called_real = p >= threshold
    tp = np.count_nonzero(called_real & y)
    fp = np.count_nonzero(called_real & ~y)
    fn = np.count_nonzero(~called_real & y)
    tn = np.count_nonzero(~called_real & ~y)
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn)
    f1 = 2 * tp / (2 * tp + fp + fn)
    return {
        "accuracy": (tp + tn) / y.size,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "fpr": fp / (fp + tn),
        "fnr": fn / (fn + tp),
    }
