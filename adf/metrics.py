"""Detection metrics for bona fide (real) vs spoof (fake) scores.

Conventions (ASVspoof): label 1 = real = target class, and a
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
    # Trials with score <= thresholds[i], per class (integers; index 0 is 0).
    real_at_or_below: np.ndarray
    fake_at_or_below: np.ndarray


def _from_tensor(x):
    """A torch tensor (any device or dtype, bf16 included) as numpy; anything else unchanged."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        return (x.float() if x.is_floating_point() else x).numpy()
    return x


def check_scores(scores, labels, need_both=True):
    """Return (scores float64, labels bool) after validating them.

    Raises ValueError for mismatched lengths, labels other than 0/1,
    NaN or infinite scores, or (with `need_both`) a missing class.
    """
    s = np.asarray(_from_tensor(scores), dtype=np.float64).ravel()
    y = np.asarray(_from_tensor(labels)).ravel()
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
    if y.size == 0:
        raise ValueError("no trials")
    if need_both and (n_real == 0 or n_real == y.size):
        missing = "real (label 1)" if n_real == 0 else "fake (label 0)"
        raise ValueError(f"no {missing} trials among {y.size}: EER/DCF need both classes")
    return s, y


def det_curve(scores, labels) -> DetCurve:
    """The tie-exact DET curve of `scores` (vectorised).

    Sorting each class on its own and then merging the two sorted runs
    (a stable sort finds the runs and merges them in linear time) is about
    twice as fast as one argsort of all scores followed by gathers.
    """
    s, y = check_scores(scores, labels)
    real = np.sort(s[y])
    fake = np.sort(s[~y])
    n_real, n_fake = real.size, fake.size
    both = np.concatenate((real, fake))
    del real, fake
    order = np.argsort(both, kind="stable")
    s = both[order]  # reads two increasing runs: cache-friendly
    del both
    is_real = order < n_real
    del order
    # Last index of each group of equal scores: only there can a threshold sit.
    ends = np.flatnonzero(s[1:] != s[:-1])
    ends = np.append(ends, s.size - 1)
    real_at_or_below = np.concatenate(([0], np.cumsum(is_real, dtype=np.int64)[ends]))
    fake_at_or_below = np.concatenate(([0], ends + 1)) - real_at_or_below
    frr = real_at_or_below / n_real
    far = (n_fake - fake_at_or_below) / n_fake
    thresholds = np.concatenate(([-np.inf], s[ends]))
    return DetCurve(frr, far, thresholds, n_real, n_fake, real_at_or_below, fake_at_or_below)


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


def _prior_log_odds(n_real, n_fake):
    return float(np.log(n_real / n_fake))


def min_cllr_from_curve(curve: DetCurve):
    """Cllr after the optimal monotonic calibration of the scores.

    Pool-adjacent-violators (scipy's isotonic regression) on the distinct
    score values of the curve, weighted by their trial counts, gives the
    best non-decreasing posterior P(real | score), constant on blocks of
    adjacent values; removing the empirical prior log-odds turns it into
    LLRs. Tied scores share one LLR, and the cost is summed per block, so
    no second sort and no per-trial pass is needed.
    """
    from scipy.optimize import isotonic_regression

    real = np.diff(curve.real_at_or_below)
    total = real + np.diff(curve.fake_at_or_below)
    blocks = isotonic_regression(real / total, weights=total.astype(np.float64)).blocks
    real_in = np.diff(curve.real_at_or_below[blocks])
    fake_in = np.diff(curve.fake_at_or_below[blocks])
    prior = _prior_log_odds(curve.n_real, curve.n_fake)
    # Block posterior real_in / (real_in + fake_in) as log-odds, minus the prior.
    # A block with one class only has an infinite LLR on its own side: cost 0.
    with np.errstate(divide="ignore"):
        llr = np.log(real_in) - np.log(fake_in) - prior
    real_cost = np.sum(real_in[real_in > 0] * np.logaddexp(0.0, -llr[real_in > 0])) / curve.n_real
    fake_cost = np.sum(fake_in[fake_in > 0] * np.logaddexp(0.0, llr[fake_in > 0])) / curve.n_fake
    return float((real_cost + fake_cost) / (2 * np.log(2)))


def min_cllr(scores, labels):
    """Cllr after the optimal monotonic calibration (PAV): the discrimination part of Cllr."""
    return min_cllr_from_curve(det_curve(scores, labels))


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


def _ratio(num, den):
    return float(num / den) if den else float("nan")


def decision_metrics(prob_real, labels, threshold=0.5):
    """Accuracy, precision, recall, F1, FPR, FNR when calling real at prob_real >= threshold.

    Real is the positive class. Works on one-class sets too; a rate whose
    denominator is empty (e.g. FPR without fake trials) is NaN.
    """
    p, y = check_scores(prob_real, labels, need_both=False)
    called_real = p >= threshold
    tp = np.count_nonzero(called_real & y)
    fp = np.count_nonzero(called_real & ~y)
    fn = np.count_nonzero(~called_real & y)
    tn = np.count_nonzero(~called_real & ~y)
    return {
        "accuracy": float((tp + tn) / y.size),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "fpr": _ratio(fp, fp + tn),
        "fnr": _ratio(fn, fn + tp),
    }


def sigmoid(x):
    """Logistic function, overflow-free: P(real) from a log-odds score."""
    x = np.asarray(x, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


def summarize(scores, labels, prob_real=None, threshold=0.5, p_spoof=P_SPOOF, c_miss=C_MISS, c_fa=C_FA):
    """Every metric of one set of trials, as a dict of floats.

    `scores` are also read as LLRs for actDCF and Cllr (uncalibrated unless
    calibrated beforehand). The decision metrics use `prob_real` >=
    `threshold`; without `prob_real`, P(real) = sigmoid(score). EER, minDCF,
    AUC and minCllr come from one DET curve (one sort).
    """
    s, y = check_scores(scores, labels)
    curve = det_curve(s, y)
    eer, eer_threshold = eer_from_curve(curve)
    mindcf, mindcf_threshold = min_dcf_from_curve(curve, p_spoof, c_miss, c_fa)
    out = {
        "n_real": curve.n_real,
        "n_fake": curve.n_fake,
        "eer": eer,
        "eer_threshold": eer_threshold,
        "min_dcf": mindcf,
        "min_dcf_threshold": mindcf_threshold,
        "act_dcf": act_dcf(s, y, p_spoof, c_miss, c_fa),
        "cllr": _cllr(s, y),
        "min_cllr": min_cllr_from_curve(curve),
        "auc": auc_from_curve(curve),
    }
    del curve
    out.update(decision_metrics(sigmoid(s) if prob_real is None else prob_real, y, threshold))
    return out


def bootstrap_ci(scores, labels, n_boot, seed=0, level=0.95, p_spoof=P_SPOOF, c_miss=C_MISS, c_fa=C_FA):
    """Percentile bootstrap confidence intervals of the EER and minDCF.

    Each replicate resamples the real and the fake trials separately, with
    replacement, keeping both class sizes (so every replicate has both
    classes). Seeded: the same `seed` gives the same intervals.
    Returns {"eer": (low, high), "min_dcf": (low, high)}.
    """
    s, y = check_scores(scores, labels)
    real, fake = s[y], s[~y]
    rng = np.random.default_rng(seed)
    boot_labels = np.r_[np.ones(real.size, bool), np.zeros(fake.size, bool)]
    eers = np.empty(n_boot)
    dcfs = np.empty(n_boot)
    for b in range(n_boot):
        sample = np.concatenate((real[rng.integers(0, real.size, real.size)], fake[rng.integers(0, fake.size, fake.size)]))
        curve = det_curve(sample, boot_labels)
        eers[b] = eer_from_curve(curve)[0]
        dcfs[b] = min_dcf_from_curve(curve, p_spoof, c_miss, c_fa)[0]
    tail = 100 * (1 - level) / 2
    return {
        "eer": tuple(float(v) for v in np.percentile(eers, [tail, 100 - tail])),
        "min_dcf": tuple(float(v) for v in np.percentile(dcfs, [tail, 100 - tail])),
    }


@dataclass(frozen=True)
class Calibration:
    """Affine score-to-LLR map `llr = slope * score + offset`."""

    slope: float
    offset: float

    def __call__(self, scores):
        return self.slope * np.asarray(scores, dtype=np.float64) + self.offset


def fit_calibration(scores, labels):
    """Logistic-regression calibration fitted on development scores.

    The unregularised logistic regression gives posterior log-odds at the
    development set's class proportions; subtracting those prior log-odds
    log(N_real / N_fake) leaves an LLR, which the Bayes threshold of
    `act_dcf` then turns into decisions for any target prior.
    """
    from sklearn.linear_model import LogisticRegression

    s, y = check_scores(scores, labels)
    model = LogisticRegression(C=np.inf, max_iter=1000).fit(s[:, None], y.astype(int))
    n_real = int(y.sum())
    prior = _prior_log_odds(n_real, y.size - n_real)
    return Calibration(float(model.coef_[0, 0]), float(model.intercept_[0] - prior))
