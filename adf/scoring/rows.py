"""Metric rows: one dict per (file, subset) with counts and every metric."""
from __future__ import annotations

import math

import numpy as np

from adf import metrics
from adf.scorefile import ScoreError
from adf.scoring.groups import groups

METRIC_KEYS = ["eer", "eer_threshold", "min_dcf", "min_dcf_threshold", "act_dcf", "cllr", "min_cllr", "auc",
               "accuracy", "precision", "recall", "f1", "fpr", "fnr"]


def score_rows(name, trials, subsets=None, pool_missing_class=False, ci=0, seed=0, threshold=0.5,
               dcf=None, calibration=None):
    """Metric rows (dicts) for one labelled trial frame: Pooled plus each subset.

    A file whose trials are all of one class is a ScoreError. A subset with
    one class only gets its decision metrics and counts; its
    threshold-free metrics are NaN unless `pool_missing_class`, which adds
    the file's pooled trials of the missing class (the ASVspoof per-attack
    convention) and says so in the row's note.
    """
    dcf = dcf or {}
    scores = trials["score"].to_numpy()
    labels = trials["label"].to_numpy().astype(bool)
    probs = trials["prob_real"].to_numpy()
    if labels.all() or not labels.any():
        raise ScoreError(name, [f"only {'real' if labels.all() else 'fake'} trials ({labels.size}): "
                                "EER, DCF and Cllr need both classes"])
    rows = []
    for subset, idx in groups(trials, subsets):
        s, y, p = scores[idx], labels[idx], probs[idx]
        n_real = int(y.sum())
        row = {"file": name, "subset": subset, "n_real": n_real, "n_fake": int(y.size - n_real), "note": ""}
        if 0 < n_real < y.size or pool_missing_class and y.size:
            if not 0 < n_real < y.size:  # add the pooled trials of the other class
                other = labels != y[0]
                row["note"] = f"vs pooled {'fake' if y[0] else 'real'} ({int(other.sum())})"
                s, y, p = np.r_[s, scores[other]], np.r_[y, labels[other]], np.r_[p, probs[other]]
                row.update(n_real=int(y.sum()), n_fake=int(y.size - y.sum()))  # the trials scored
            row.update(metrics.summarize(s, y, p, threshold, **dcf))
            if ci:
                bounds = metrics.bootstrap_ci(s, y, ci, seed=seed, **dcf)
                row.update(eer_ci_low=bounds["eer"][0], eer_ci_high=bounds["eer"][1],
                           min_dcf_ci_low=bounds["min_dcf"][0], min_dcf_ci_high=bounds["min_dcf"][1])
            if calibration is not None:
                llr = calibration(s)
                row.update(act_dcf_calibrated=metrics.act_dcf(llr, y, **dcf), cllr_calibrated=metrics.cllr(llr, y))
        else:
            row.update({k: math.nan for k in METRIC_KEYS})
            row.update(metrics.decision_metrics(p, y, threshold))
            row["note"] = f"only {'real' if n_real else 'fake'} trials"
        rows.append(row)
    return rows
