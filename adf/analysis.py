"""Embedding analysis: how well do pooled SSL embeddings separate real from fake?

Input: an (N, D) float array saved with numpy (`.npy`, loaded without
pickle), the N utterance IDs in the same order (a text file with one ID a
line, or a CSV with an id/ID column such as the detect CSV), and a manifest
(docs/data.md) for labels, attacks and any other column.

Output: a 2-D map (PCA or t-SNE) coloured by label and marked by attack or
corpus (ID prefix), and a linear probe's cross-validated EER: a standardised
logistic regression scored with `cross_val_predict`, so every utterance is
scored by a model that did not see it.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd

from adf import metrics
from adf.scorefile import ScoreError
from adf.scoring.groups import subset_codes

CORPUS = "corpus"  # pseudo-column: the ID prefix


def load_embeddings(npy_path, ids_path):
    """(X float64 (N, D), ids list). Refuses pickled arrays, NaN/inf rows, length
    mismatches and duplicate IDs, naming the file and rows."""
    try:
        X = np.load(npy_path, allow_pickle=False)
    except FileNotFoundError:
        raise ScoreError(npy_path, ["file does not exist"]) from None
    except ValueError as err:  # object arrays need pickle: refused
        raise ScoreError(npy_path, [f"not a plain numeric .npy array ({err})"]) from None
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
        raise ScoreError(npy_path, [f"expected a numeric (N, D) array, got {X.dtype} {X.shape}"])
    X = X.astype(np.float64)
    ids = _read_ids(ids_path)
    if len(ids) != X.shape[0]:
        raise ScoreError(ids_path, [f"{len(ids)} IDs but {X.shape[0]} embedding rows in {npy_path}"])
    problems = [f"row {i}: NaN or infinite values (ID {ids[i]!r})" for i in np.flatnonzero(~np.isfinite(X).all(axis=1))]
    dup = pd.Series(ids).duplicated(keep=False).to_numpy()
    problems += [f"ID {ids[i]!r} (row {i}) is duplicated" for i in np.flatnonzero(dup)]
    if problems:
        raise ScoreError(npy_path, problems)
    return X, ids


def _read_ids(path):
    try:
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
    except FileNotFoundError:
        raise ScoreError(path, ["file does not exist"]) from None
    header = [c.strip().lower() for c in first.split(",")]
    if "id" in header and ("," in first or path.endswith(".csv")):  # a CSV, possibly of the id column alone
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        return df[df.columns[header.index("id")]].str.strip().tolist()
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip()]


def manifest_columns(manifest_path, ids, columns):
    """Label (1 real / 0 fake) and the requested columns for `ids`, in order.

    `columns` may name manifest columns or `corpus` (the ID prefix).
    IDs missing from the manifest are an error naming them.
    """
    try:
        df = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
    except (FileNotFoundError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ScoreError(manifest_path, [f"not a readable CSV ({err})"]) from None
    if not {"ID", "Label"} <= set(df.columns):
        raise ScoreError(manifest_path, ["needs the columns ID and Label"])
    df = df.set_index("ID")
    if df.index.duplicated().any():
        raise ScoreError(manifest_path, [f"duplicate ID {i!r}" for i in df.index[df.index.duplicated()][:20]])
    missing = [i for i in ids if i not in df.index]
    if missing:
        raise ScoreError(manifest_path, [f"no row for embedding ID {i!r}" for i in missing])
    rows = df.loc[ids]
    bad = ~rows["Label"].isin(["real", "fake"])
    if bad.any():
        raise ScoreError(manifest_path, [f"ID {i!r}: Label must be real/fake" for i in rows.index[bad]])
    out = pd.DataFrame({"label": (rows["Label"] == "real").astype(int).to_numpy()}, index=range(len(ids)))
    for col in columns:
        if col == CORPUS:
            codes, names = subset_codes(pd.DataFrame({"id": ids}))
            out[col] = np.where(codes >= 0, np.asarray(names, dtype=object)[np.maximum(codes, 0)], "-")
        elif col in rows.columns:
            out[col] = rows[col].to_numpy()
        else:
            raise ScoreError(manifest_path, [f"no column {col!r} (columns: ID, {', '.join(rows.columns)})"])
    return out


def probe_scores(X, y, folds=5, seed=0, groups=None):
    """Cross-validated linear-probe scores (decision function = log-odds of real).

    Stratified folds, shuffled with `seed`; with `groups` (e.g. speakers),
    no group is split across folds (StratifiedGroupKFold).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    if groups is None:
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_predict(probe, X, y, cv=cv, groups=groups, method="decision_function")


def linear_probe(X, y, folds=5, seed=0, groups=None):
    """Cross-validated EER (and AUC) of a linear probe on the embeddings."""
    scores = probe_scores(X, y, folds, seed, groups)
    eer, threshold = metrics.compute_eer(scores, y)
    return {"eer": eer, "eer_threshold": threshold, "auc": metrics.roc_auc(scores, y), "folds": folds,
            "seed": seed, "n_real": int(np.sum(y == 1)), "n_fake": int(np.sum(y == 0)), "dim": int(X.shape[1]),
            "grouped": groups is not None}


def project_2d(X, method="pca", seed=0):
    """2-D projection: PCA (linear, fast) or t-SNE (neighbourhoods; after a 50-D PCA)."""
    from sklearn.decomposition import PCA

    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(X)
    if method == "tsne":
        from sklearn.manifold import TSNE

        if X.shape[1] > 50:
            X = PCA(n_components=min(50, X.shape[0]), random_state=seed).fit_transform(X)
        perplexity = min(30.0, (X.shape[0] - 1) / 3)
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(X)
    raise ValueError(f"unknown projection {method!r} (pca or tsne)")


METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE"}
MARKERS = ["o", "s", "^", "v", "D", "P", "X", "*", "<", ">"]


def plot_embedding(xy, labels, marks, path, title):
    """Scatter: colour = label (real green, fake red), marker = `marks` value.

    The most frequent values get their own marker; the rest are drawn as 'other'.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    marks = pd.Series(marks, dtype=str)
    top = marks.value_counts().index[: len(MARKERS) - 1].tolist()
    marks = marks.where(marks.isin(top), "other")
    fig, ax = plt.subplots(figsize=(7, 6))
    for m, value in enumerate(top + (["other"] if (marks == "other").any() else [])):
        for cls, name, color in ((1, "real", "tab:green"), (0, "fake", "tab:red")):
            sel = (marks == value).to_numpy() & (labels == cls)
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=12, alpha=0.6, c=color, marker=MARKERS[m % len(MARKERS)],
                           label=f"{name} / {value} ({int(sel.sum())})")
    ax.set_title(title)
    ax.legend(fontsize="x-small", markerscale=1.5, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def analyse(npy_path, ids_path, manifest_path, out_dir, method="pca", mark_by="Attack", folds=5, seed=0,
            cv_groups=None, max_points=5000):
    """Run the probe and the plot; write `probe.json` and `embedding_<method>.png` to `out_dir`.

    The probe uses every utterance; the plot a seeded random subset of at
    most `max_points` (t-SNE is quadratic). Returns the probe result dict.
    """
    X, ids = load_embeddings(npy_path, ids_path)
    columns = [mark_by] + ([cv_groups] if cv_groups and cv_groups != mark_by else [])
    info = manifest_columns(manifest_path, ids, columns)
    y = info["label"].to_numpy()
    if y.min() == y.max():
        raise ScoreError(manifest_path, [f"all {y.size} embedded utterances are {'real' if y[0] else 'fake'}: "
                                         "the probe needs both classes"])
    result = linear_probe(X, y, folds, seed, info[cv_groups].to_numpy() if cv_groups else None)
    result.update(embeddings=str(npy_path), manifest=str(manifest_path), cv_groups=cv_groups)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "probe.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(ids), size=min(max_points, len(ids)), replace=False))
    xy = project_2d(X[keep], method, seed)
    plot = os.path.join(out_dir, f"embedding_{method}.png")
    plot_embedding(xy, y[keep], info[mark_by].to_numpy()[keep], plot,
                   f"{METHOD_NAMES[method]} of {os.path.basename(str(npy_path))} ({keep.size} points), marker: {mark_by}")
    result["plot"] = plot
    return result
