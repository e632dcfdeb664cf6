"""Timeline figure of one utterance: waveform with its reference fake regions, segment scores
with the threshold, and the regions called fake."""
from __future__ import annotations

import numpy as np


def plot_timeline(path, wav, sr, reference, scores, resolution, threshold=0.0, predicted=(), title=""):
    """Write a PNG to `path`: waveform (reference fake regions shaded red) over the segment
    scores (steps; below `threshold` = fake) and a strip of the predicted fake regions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(wav)) / sr
    fig, (ax_w, ax_s, ax_p) = plt.subplots(3, 1, figsize=(9, 4.6), sharex=True,
                                           gridspec_kw={"height_ratios": [2, 2, 0.5]})
    ax_w.plot(t, wav, lw=0.4, color="0.25")
    for s, e in reference:
        ax_w.axvspan(s, e, color="tab:red", alpha=0.25, lw=0)
    ax_w.set_ylabel("waveform")
    ax_w.set_title(title or "reference fake regions shaded", fontsize=10)
    edges = np.arange(len(scores) + 1) * resolution
    ax_s.stairs(scores, edges, color="tab:blue", lw=1.2, label=f"segment score ({resolution * 1000:g} ms)")
    ax_s.axhline(threshold, color="tab:red", ls="--", lw=0.8, label=f"threshold {threshold:.3g}")
    for s, e in reference:
        ax_s.axvspan(s, e, color="tab:red", alpha=0.12, lw=0)
    ax_s.set_ylabel("real − fake logit")
    ax_s.legend(loc="lower right", fontsize=7)
    for s, e in predicted:
        ax_p.axvspan(s, e, color="tab:orange", lw=0)
    ax_p.set_yticks([])
    ax_p.set_ylabel("called\nfake", rotation=0, ha="right", va="center", fontsize=8)
    ax_p.set_xlabel("time (s)")
    ax_p.set_xlim(0, len(wav) / sr)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
