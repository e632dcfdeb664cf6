"""Score files in, metric tables out: reading, labelling, grouping, reporting.

Three score-file formats are recognised from their first line:

* the detect CSV ``id,path,logit_fake,logit_real,prob_real[,label]``;
  score = logit_real - logit_fake, P(real) = the ``prob_real`` column;
* the reference CSV ``ID,Score,Label`` with Score the string
  ``"[fake_logit, real_logit]"``; score = real - fake logit, P(real) its softmax;
* whitespace text ``id score [label]``; the score is used as it is and read
  as log-odds, so P(real) = sigmoid(score).

Labels (1 / real / bonafide vs 0 / fake / spoof) come from the file or from a
key (`read_key`): a 12-column manifest (docs/data.md) or a
two-column ``id label`` file. Trials are reported pooled and per subset:
by ID prefix (text before the first ``-``, docs/data.md) or by any
manifest column. Every problem row is named (file, line, what is wrong);
readers raise `ScoreError` or, with ``on_error="skip"``, drop the rows and
return the problems so the caller can warn.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd

from adf import metrics
from adf.atomic import write_csv_atomic, write_text_atomic
from adf.scorefile import (ScoreError, drop_bad_rows, find_columns, first_line, parse_labels, read_fields,
                           read_scores, read_table)

POOLED = "Pooled"
KEY_HEADER_WORDS = {"label", "labels", "key"}


def read_key(path, by=None, on_error="raise"):
    """Read labels (and optionally a grouping column) for score IDs.

    A CSV whose header has ID and Label (a manifest, docs/data.md) or a
    two-column ``id label`` file (comma or whitespace, optional header).
    Returns (DataFrame id, label[, group], problems).
    """
    first = first_line(path)
    if "," in first and {"id", "label"} <= {c.strip().lower() for c in first.split(",")}:
        df = read_table(path)
        id_col, label_col = find_columns(df.columns, "id", "label")
        if by is not None and by not in df.columns:
            raise ScoreError(path, [f"no column {by!r} to group by (columns: {', '.join(df.columns)})"])
        out = pd.DataFrame({"id": df[id_col].str.strip(), "label_text": df[label_col]})
        if by is not None:
            out["group"] = df[by].astype(str)
        line = np.arange(len(df)) + 2
    else:
        if by is not None:
            raise ScoreError(path, [f"--by {by} needs a manifest key with that column; this is a two-column key"])
        sep = "," if "," in first else r"\s+"
        fields = [f.strip().lower() for f in (first.split(",") if sep == "," else first.split())]
        has_header = len(fields) == 2 and fields[1] in KEY_HEADER_WORDS
        df, line = read_fields(path, sep, has_header, ["id", "label"])
        out = pd.DataFrame({"id": df[0].str.strip(), "label_text": df[1].fillna("")})
    labels, bad = parse_labels(out["label_text"])
    out = out.drop(columns="label_text").assign(label=labels, line=line)
    problems = []
    checks = [
        (out["id"].isna() | (out["id"] == ""), "empty ID"),
        (pd.Series(bad) | np.isnan(labels), "label must be real/fake (or 1/0, bonafide/spoof)"),
        (out["id"].duplicated(keep=False), "duplicate ID"),
    ]
    for mask, what in checks:
        for i in np.flatnonzero(mask.to_numpy()):
            problems.append((i, f"line {out.at[i, 'line']}: {what} (ID {out.at[i, 'id']!r})"))
    return drop_bad_rows(path, out, problems, on_error).drop(columns="line"), [f"{path}: {m}" for _, m in sorted(problems)]


def attach_labels(scores, score_path, key=None, key_path=None, on_error="raise"):
    """Give every trial a label (and a `group` column when the key has one).

    Labels come from `key` when given, else from the score file. IDs without
    a label, or whose file label disagrees with the key, are problems.
    Returns (frame, problems, notes); notes are informational lines.
    """
    notes = []
    out = scores
    if key is not None:
        merged = scores.merge(key.rename(columns={"label": "key_label"}), on="id", how="left", validate="one_to_one")
        disagree = merged["label"].notna() & merged["key_label"].notna() & (merged["label"] != merged["key_label"])
        problems = [(i, f"line {merged.at[i, 'line']}: label {int(merged.at[i, 'label'])} in the score file but "
                        f"{int(merged.at[i, 'key_label'])} in the key {key_path} (ID {merged.at[i, 'id']!r})")
                    for i in np.flatnonzero(disagree.to_numpy())]
        merged["label"] = merged["key_label"]
        out = merged.drop(columns="key_label")
        unused = len(key) - int(out["label"].notna().sum())
        if unused:
            notes.append(f"{key_path}: {unused} ID(s) of the key have no score in {score_path}")
    else:
        problems = []
    missing = out["label"].isna().to_numpy()
    if key is None and missing.all():
        raise ScoreError(score_path, ["no labels: the file has no label column (or it is empty); pass --key"])
    where = f"the key {key_path}" if key is not None else "the file (no label column; pass --key)"
    problems += [(i, f"line {out.at[i, 'line']}: no label in {where} (ID {out.at[i, 'id']!r})")
                 for i in np.flatnonzero(missing)]
    out = drop_bad_rows(score_path, out, problems, on_error)
    out["label"] = out["label"].astype(np.int8)
    return out, [f"{score_path}: {m}" for _, m in sorted(problems)], notes


# --- grouping ----------------------------------------------------------------


def subset_codes(trials):
    """(codes, names): each trial's subset as an index into `names` (-1 = none).

    The subset is the `group` column when present (from `--by`), else the ID
    prefix: the text before the first '-' (docs/data.md); an ID without
    '-' has none. Names are sorted; every name has at least one trial.
    """
    if "group" in trials:
        return pd.factorize(trials["group"], sort=True)
    head, sep, _ = np.strings.partition(np.asarray(trials["id"], dtype=str), "-")
    names, codes = np.unique(head, return_inverse=True)
    codes[sep == ""] = -1
    used = np.bincount(codes[codes >= 0], minlength=names.size) > 0
    remap = np.cumsum(used) - 1
    return np.where(codes >= 0, remap[np.maximum(codes, 0)], -1), names[used]


def groups(trials, subsets=None):
    """Yield (name, row indices): Pooled first, then each subset in sorted order.

    `subsets` restricts the subsets to those names (exact, case-sensitive);
    trials in no listed subset still count in Pooled.
    """
    yield POOLED, np.arange(len(trials))
    codes, names = subset_codes(trials)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    wanted = set(names) if subsets is None else set(subsets)
    for g, name in enumerate(names):
        if name in wanted:
            yield str(name), order[bounds[g] : bounds[g + 1]]


# --- the table ---------------------------------------------------------------

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


# (key, header, kind): kind "pct" prints 100 x value, "int" as is, "num" 4 decimals
COLUMNS = [
    ("file", "File", "str"), ("subset", "Subset", "str"), ("n_real", "#real", "int"), ("n_fake", "#fake", "int"),
    ("eer", "EER%", "pct"), ("eer_ci_low", "EER% lo", "pct"), ("eer_ci_high", "EER% hi", "pct"),
    ("eer_threshold", "EER thr", "num"), ("min_dcf", "minDCF", "num"),
    ("min_dcf_ci_low", "minDCF lo", "num"), ("min_dcf_ci_high", "minDCF hi", "num"),
    ("act_dcf", "actDCF", "num"), ("cllr", "Cllr", "num"), ("min_cllr", "minCllr", "num"),
    ("act_dcf_calibrated", "actDCF cal", "num"), ("cllr_calibrated", "Cllr cal", "num"),
    ("auc", "AUC", "num"), ("accuracy", "Acc%", "pct"), ("precision", "Prec%", "pct"), ("recall", "Rec%", "pct"),
    ("f1", "F1%", "pct"), ("fpr", "FPR%", "pct"), ("fnr", "FNR%", "pct"), ("note", "Note", "str"),
]


def _cell(value, kind):
    if kind == "str":
        return str(value)
    if kind == "int":
        return str(int(value))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.2f}" if kind == "pct" else f"{value:.4f}"


def _shown_columns(rows):
    present = set().union(*(r.keys() for r in rows)) if rows else set()
    cols = [c for c in COLUMNS if c[0] in present]
    if len({r["file"] for r in rows}) == 1:
        cols = [c for c in cols if c[0] != "file"]
    if not any(r.get("note") for r in rows):
        cols = [c for c in cols if c[0] != "note"]
    return cols


def format_text(rows):
    """Fixed-width table for the terminal."""
    cols = _shown_columns(rows)
    cells = [[h for _, h, _ in cols]] + [[_cell(r.get(k, math.nan), kind) for k, _, kind in cols] for r in rows]
    widths = [max(len(line[j]) for line in cells) for j in range(len(cols))]
    left = {j for j, (_, _, kind) in enumerate(cols) if kind == "str"}
    fmt = lambda line: "  ".join(c.ljust(w) if j in left else c.rjust(w) for j, (c, w) in enumerate(zip(line, widths)))
    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths)] + [fmt(c).rstrip() for c in cells[1:]])


def format_markdown(rows):
    """GitHub-flavoured Markdown table (rates in %)."""
    cols = _shown_columns(rows)
    head = "| " + " | ".join(h for _, h, _ in cols) + " |"
    rule = "|" + "|".join("---" if kind == "str" else "---:" for _, _, kind in cols) + "|"
    body = ["| " + " | ".join(_cell(r.get(k, math.nan), kind) for k, _, kind in cols) + " |" for r in rows]
    return "\n".join([head, rule] + body) + "\n"


def _json_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def write_json(rows, path, info):
    """Rows as JSON (rates as fractions; NaN -> null, infinite thresholds -> "inf"/"-inf"),
    plus `info` (inputs, score columns, parameters)."""
    payload = {"info": info, "rows": [{k: _json_value(v) for k, v in r.items()} for r in rows]}
    write_text_atomic(json.dumps(payload, indent=2), path)


def write_rows_csv(rows, path):
    """Rows as CSV (rates as fractions), columns in table order."""
    present = set().union(*(r.keys() for r in rows))
    write_csv_atomic(pd.DataFrame(rows)[[k for k, _, _ in COLUMNS if k in present]], path)


# --- plots -------------------------------------------------------------------


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


# --- command line ------------------------------------------------------------


def add_arguments(parser):
    parser.add_argument("scores", nargs="+", help="score files: detect CSV, reference ID,Score,Label CSV, or 'id score [label]' text")
    parser.add_argument("--key", help="labels: a 12-column manifest (ID, Label real/fake) or a two-column 'id label' file")
    parser.add_argument("--by", help="group by this manifest column of --key (Attack, Language, Speaker...) instead of the ID prefix")
    parser.add_argument("--subsets", help="comma-separated subsets to report next to Pooled (default: all)")
    parser.add_argument("--pool-missing-class", action="store_true",
                        help="score a one-class subset against the file's pooled trials of the other class")
    parser.add_argument("--threshold", type=float, default=0.5, help="call real when P(real) >= this (default 0.5)")
    parser.add_argument("--p-spoof", type=float, default=metrics.P_SPOOF, help="DCF spoof prior (ASVspoof 5: 0.05)")
    parser.add_argument("--c-miss", type=float, default=metrics.C_MISS, help="DCF cost of a miss (ASVspoof 5: 1)")
    parser.add_argument("--c-fa", type=float, default=metrics.C_FA, help="DCF cost of a false alarm (ASVspoof 5: 10)")
    parser.add_argument("--ci", type=int, default=0, metavar="N", help="bootstrap N resamples for 95%% CIs of EER and minDCF")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--calibrate", metavar="DEV_SCORES",
                        help="fit logistic-regression calibration on these dev scores; report actDCF and Cllr after it")
    parser.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    parser.add_argument("--csv", metavar="PATH", help="write the rows as CSV")
    parser.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")
    parser.add_argument("--plot", metavar="DIR", help="write det.png and per-file score histograms here")
    parser.add_argument("--skip-bad", action="store_true",
                        help="exclude bad rows (NaN scores, duplicates, unlabelled IDs...) with a warning instead of failing")


def _display_names(paths):
    """Short unique names for the files: the base name, or the path when base names clash."""
    bases = [os.path.basename(p) for p in paths]
    return bases if len(set(bases)) == len(bases) else list(paths)


def load_labelled(path, key, key_path, on_error, warn):
    """read_scores + attach_labels, reporting skipped problems through `warn`."""
    trials, problems, description = read_scores(path, on_error)
    trials, label_problems, notes = attach_labels(trials, path, key, key_path, on_error)
    for line in problems + label_problems:
        warn(f"warning: skipped {line}")
    for line in notes:
        warn(f"note: {line}")
    return trials, description


def run(args):
    import sys

    warn = lambda msg: print(msg, file=sys.stderr)
    on_error = "skip" if args.skip_bad else "raise"
    dcf = {"p_spoof": args.p_spoof, "c_miss": args.c_miss, "c_fa": args.c_fa}
    subsets = [s for s in args.subsets.split(",") if s] if args.subsets else None
    try:
        if args.by and not args.key:
            raise ScoreError("--by", ["needs --key with a manifest that has that column"])
        key = None
        if args.key:
            key, problems = read_key(args.key, by=args.by, on_error=on_error)
            for line in problems:
                warn(f"warning: skipped {line}")
        info = {"scores": {}, "key": args.key, "by": args.by, "dcf": dcf, "threshold": args.threshold}
        calibration = None
        if args.calibrate:
            dev, description = load_labelled(args.calibrate, key, args.key, on_error, warn)
            calibration = metrics.fit_calibration(dev["score"], dev["label"])
            print(f"# calibration fitted on {args.calibrate} ({description}): "
                  f"LLR = {calibration.slope:.6g} * score {calibration.offset:+.6g}")
            info["calibration"] = {"dev": args.calibrate, "slope": calibration.slope, "offset": calibration.offset}
        labelled, rows = [], []
        for path, name in zip(args.scores, _display_names(args.scores)):
            trials, description = load_labelled(path, key, args.key, on_error, warn)
            print(f"# {path}: {description}")
            info["scores"][path] = description
            if subsets:
                present = set(subset_codes(trials)[1])
                for missing in sorted(set(subsets) - present):
                    warn(f"warning: {path}: no trials in subset {missing!r}")
            rows += score_rows(name, trials, subsets, args.pool_missing_class, args.ci, args.seed,
                               args.threshold, dcf, calibration)
            labelled.append((name, trials))
    except ScoreError as err:
        warn(f"error: {err}")
        return 2
    print(f"# EER/minDCF thr: real when score > thr.  actDCF, Cllr: scores read as LLRs (Bayes threshold "
          f"{metrics.bayes_threshold(**dcf):.4f}; calibrated only in the 'cal' columns).  "
          f"Acc..FNR: real when P(real) >= {args.threshold:g}.")
    print(format_text(rows))
    if args.json:
        write_json(rows, args.json, info)
    if args.csv:
        write_rows_csv(rows, args.csv)
    if args.markdown:
        write_text_atomic(format_markdown(rows), args.markdown)
    if args.plot:
        for path in write_plots(labelled, args.plot, subsets):
            print(f"# wrote {path}")
    return 0
