"""DET curves and per-class score histograms (matplotlib, imported when drawing)."""
from __future__ import annotations

import math
import os

import numpy as np

from adf import metrics
from adf.scoring.groups import groups


def plot_det(curves, path, title="DET curves"):
    """One DET figure (miss vs false-alarm rate on normal-deviate axes).

    `curves` holds (label, DetCurve, style) with style a dict of matplotlib
    line options (or None)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    ticks = np.array([0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8])
    eps, top = 5e-4, 0.85  # rates of 0 or 1 sit at the edge of the plotted range
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    for label, curve, style in curves:
        far = norm.ppf(np.clip(curve.far, eps, 1 - eps))
        frr = norm.ppf(np.clip(curve.frr, eps, 1 - eps))
        eer = metrics.eer_from_curve(curve)[0]
        ax.plot(far, frr, label=f"{label} (EER {100 * eer:.2f}%)", **(style or {}))
    ax.plot(norm.ppf([eps, top]), norm.ppf([eps, top]), "k:", linewidth=0.8)
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(eps), norm.ppf(top))
    ax.set_ylim(norm.ppf(eps), norm.ppf(top))
    ax.set_xlabel("False alarm rate: fake called real (%)")
    ax.set_ylabel("Miss rate: real called fake (%)")
    ax.set_title(title)
    ax.grid(True, linewidth=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_histograms(panels, path, bins=60):
    """Per-class score histograms, one panel per (label, scores, labels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.5 * ncols, 3.2 * nrows), squeeze=False)
    for ax, (label, s, y) in zip(axes.flat, panels):
        edges = np.histogram_bin_edges(s, bins=bins)
        for cls, name, color in ((1, "real", "tab:green"), (0, "fake", "tab:red")):
            if np.any(y == cls):
                ax.hist(s[y == cls], bins=edges, alpha=0.55, color=color, label=f"{name} ({int(np.sum(y == cls))})")
        ax.set_title(label, fontsize="small")
        ax.set_xlabel("score")
        ax.legend(fontsize="x-small")
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _safe_name(text):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def write_plots(labelled, folder, subsets=None, max_curves=12):
    """det.png (one curve per file and subset with both classes, at most `max_curves`)
    and hist_<file>.png per score file. Returns the written paths."""
    os.makedirs(folder, exist_ok=True)
    curves, written = [], []
    linestyles = ["-", "--", ":", "-."]
    for f, (name, trials) in enumerate(labelled):
        s = trials["score"].to_numpy()
        y = trials["label"].to_numpy().astype(bool)
        panels = []
        for g, (subset, idx) in enumerate(groups(trials, subsets)):
            panels.append((subset, s[idx], y[idx]))
            if 0 < y[idx].sum() < idx.size and len(curves) < max_curves:
                label = subset if len(labelled) == 1 else f"{name}: {subset}"
                # colour = subset, line style = file
                style = {"color": f"C{g % 10}", "linestyle": linestyles[f % len(linestyles)]}
                curves.append((label, metrics.det_curve(s[idx], y[idx]), style))
        hist = os.path.join(folder, f"hist_{_safe_name(name)}.png")
        plot_histograms(panels, hist)
        written.append(hist)
    det = os.path.join(folder, "det.png")
    plot_det(curves, det)
    return [det] + written
