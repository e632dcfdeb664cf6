"""Distances between two embedding samples (reference X, incoming Y; rows = utterances).

Four estimators, each a function of (X, Y) returning a dict of numbers:

- `frechet`: Fréchet (2-Wasserstein) distance between Gaussian fits,
  |mu_x - mu_y|^2 + tr(S_x + S_y - 2 (S_x^1/2 S_y S_x^1/2)^1/2), in squared
  embedding units (the FID formula). The matrix square root goes through a
  symmetric eigendecomposition, so singular covariances (fewer utterances than
  dimensions) stay finite and real.
- `gaussian_kl`: symmetric KL (Jeffreys divergence, KL(P||Q) + KL(Q||P)) of
  Gaussian fits after PCA to `dim` dimensions. The PCA is fitted on the
  pooled sample (directions fitted on one side only would inflate that
  side's variances, a bias that shows as drift where there is none); a small ridge (`ridge` times the mean variance) keeps the covariances
  invertible when a sample is small.
- `mmd`: squared maximum mean discrepancy with an RBF kernel whose bandwidth
  is the median pairwise distance of the pooled sample (median heuristic);
  unbiased estimate, and a permutation-test p-value (H0: same distribution).
- `classifier_auc`: classifier two-sample test: cross-validated ROC AUC of a
  standardised logistic regression telling reference from incoming (0.5 = no
  telling them apart). Folds are stratified; every utterance is scored by a
  model that did not see it.

Finite-sample note: the plug-in Gaussian distances are biased upwards (two
samples of one distribution give a small positive Fréchet/KL value that
shrinks with the sample size); compare values measured at similar sample
sizes, or read the MMD p-value, which accounts for the sample size.
"""
from __future__ import annotations

import numpy as np

ESTIMATORS = ("frechet", "gaussian_kl", "mmd", "classifier_auc")


def _check(X, Y, min_rows=2):
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"need two (N, D) arrays of the same D, got {X.shape} and {Y.shape}")
    if len(X) < min_rows or len(Y) < min_rows:
        raise ValueError(f"need at least {min_rows} rows in each sample, got {len(X)} and {len(Y)}")
    return X, Y


def _psd_sqrt(S):
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    w, V = np.linalg.eigh((S + S.T) / 2)
    return (V * np.sqrt(np.clip(w, 0, None))) @ V.T


def frechet_gaussian(mu1, S1, mu2, S2):
    """Fréchet distance between N(mu1, S1) and N(mu2, S2) (closed form)."""
    A = _psd_sqrt(S1)
    cross = np.linalg.eigvalsh(A @ S2 @ A)
    trace_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    diff = np.asarray(mu1) - np.asarray(mu2)
    return float(diff @ diff + np.trace(S1) + np.trace(S2) - 2 * trace_sqrt)


def frechet(X, Y):
    X, Y = _check(X, Y)
    d = frechet_gaussian(X.mean(0), np.cov(X, rowvar=False), Y.mean(0), np.cov(Y, rowvar=False))
    return {"frechet": max(d, 0.0)}


def kl_gaussian(mu0, S0, mu1, S1):
    """KL(N(mu0, S0) || N(mu1, S1)) in nats (closed form)."""
    k = len(mu0)
    inv1 = np.linalg.inv(S1)
    diff = np.asarray(mu1) - np.asarray(mu0)
    _, logdet0 = np.linalg.slogdet(S0)
    _, logdet1 = np.linalg.slogdet(S1)
    return float(0.5 * (np.trace(inv1 @ S0) + diff @ inv1 @ diff - k + logdet1 - logdet0))


def gaussian_kl(X, Y, dim=16, ridge=1e-3):
    """Symmetric KL of Gaussian fits after a PCA (fitted on X and Y pooled) to `dim` dimensions.

    `dim` is capped by the sample sizes and the embedding size; the dimension
    used is reported as `kl_dim`.
    """
    X, Y = _check(X, Y, min_rows=3)
    k = int(min(dim, X.shape[1], len(X) - 1, len(Y) - 1))
    mean = np.concatenate([X, Y]).mean(0)
    _, _, Vt = np.linalg.svd(np.concatenate([X, Y]) - mean, full_matrices=False)
    P = Vt[:k].T
    Xp, Yp = (X - mean) @ P, (Y - mean) @ P
    S0, S1 = np.cov(Xp, rowvar=False).reshape(k, k), np.cov(Yp, rowvar=False).reshape(k, k)
    eps = ridge * np.trace(S0) / k
    S0, S1 = S0 + eps * np.eye(k), S1 + eps * np.eye(k)
    m0, m1 = Xp.mean(0), Yp.mean(0)
    return {"gaussian_kl": kl_gaussian(m0, S0, m1, S1) + kl_gaussian(m1, S1, m0, S0), "kl_dim": k}


def _sq_dists(Z):
    sq = (Z * Z).sum(1)
    return np.clip(sq[:, None] + sq[None, :] - 2 * Z @ Z.T, 0, None)


def _mmd2_unbiased(K, A):
    """Unbiased MMD^2 for each column of the 0/1 matrix A (1 = sample 1), from the
    pooled kernel matrix K with a zero diagonal (the unbiased estimate leaves i = j out)."""
    B = 1.0 - A
    n, m = A[:, 0].sum(), B[:, 0].sum()
    KA = K @ A
    sxx, sxy = (A * KA).sum(0), (B * KA).sum(0)
    syy = (B * (K @ B)).sum(0)
    return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2 * sxy / (n * m)


def mmd(X, Y, permutations=500, seed=0, bandwidth=None):
    """Unbiased squared MMD with an RBF kernel exp(-d^2 / (2 h^2)) and its permutation p-value.

    h is the median pairwise distance of the pooled sample unless `bandwidth`
    is given. p = (1 + #{permuted >= observed}) / (1 + permutations).
    """
    X, Y = _check(X, Y)
    Z = np.concatenate([X, Y])
    D2 = _sq_dists(Z)
    if bandwidth is None:
        median = float(np.median(np.sqrt(D2[np.triu_indices(len(Z), 1)])))
        bandwidth = median if median > 0 else 1.0
    K = np.exp(-D2 / (2 * bandwidth ** 2))
    np.fill_diagonal(K, 0.0)
    member = np.r_[np.ones(len(X)), np.zeros(len(Y))]
    observed = float(_mmd2_unbiased(K, member[:, None])[0])
    rng = np.random.default_rng(seed)
    exceed = 0
    for start in range(0, permutations, 100):  # 100 relabellings per matrix product
        A = np.stack([rng.permutation(member) for _ in range(min(100, permutations - start))], axis=1)
        exceed += int((_mmd2_unbiased(K, A) >= observed).sum())
    pvalue = (1 + exceed) / (1 + permutations) if permutations else float("nan")
    return {"mmd2": observed, "mmd_pvalue": float(pvalue), "mmd_bandwidth": bandwidth}


def classifier_auc(X, Y, folds=5, seed=0):
    """Cross-validated AUC of a logistic regression separating X (0) from Y (1)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, Y = _check(X, Y)
    folds = int(min(folds, len(X), len(Y)))
    Z = np.concatenate([X, Y])
    t = np.r_[np.zeros(len(X)), np.ones(len(Y))]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(clf, Z, t, cv=cv, method="decision_function")
    return {"classifier_auc": float(roc_auc_score(t, scores)), "classifier_folds": folds}


def all_estimators(X, Y, kl_dim=16, permutations=500, folds=5, seed=0, which=ESTIMATORS):
    """Every estimator in `which` on (X, Y), merged into one dict (plus the sample sizes)."""
    out = {"n_reference": int(len(X)), "n_incoming": int(len(Y))}
    for name in which:
        if name == "frechet":
            out.update(frechet(X, Y))
        elif name == "gaussian_kl":
            out.update(gaussian_kl(X, Y, dim=kl_dim))
        elif name == "mmd":
            out.update(mmd(X, Y, permutations=permutations, seed=seed))
        elif name == "classifier_auc":
            out.update(classifier_auc(X, Y, folds=folds, seed=seed))
        else:
            raise ValueError(f"unknown estimator {name!r} (choose from {', '.join(ESTIMATORS)})")
    return out
