"""`adf drift`: how far do incoming embeddings drift from a reference set?

    adf drift --reference train.npy --incoming new.npy --by Attack --manifest new.csv -o drift/
    adf drift --reference train.npy --incoming stream.npy --window 200 --alpha 0.01 -o drift/

Embedding files are `adf embed` outputs: an (N, D) `.npy` plus its id list
(by default the `.csv` next to it, which `adf embed` writes; any one-ID-a-line
text or CSV with an id/ID column also works). The incoming rows are compared
with the reference as a whole (default), per value of a column (`--by`; from
the id CSV or a `--manifest`), or per window of N consecutive rows (`--window`,
in file order or sorted by `--order-by`). Rows of either side can be selected
with `--reference-where/--incoming-where COLUMN=VALUE`.

Each comparison runs the estimators of adf.drift.estimators. A row is
flagged (`alarm`) when the MMD permutation p-value is below `--alpha` or an
estimator exceeds its `--threshold NAME=VALUE`. Writes `drift.json` (settings
and rows), `drift.csv` and `drift.png` (each estimator per group/window, alarms
marked) to the output folder, and prints the table. Exit status 3 with
`--fail-on-alarm` when any row is flagged.
"""
from __future__ import annotations

import os
import sys

from adf.drift.estimators import ESTIMATORS

# Columns of the report that hold an estimator's headline value (for thresholds and the plot).
HEADLINE = {"frechet": "frechet", "gaussian_kl": "gaussian_kl", "mmd": "mmd2", "classifier_auc": "classifier_auc"}
PLOTTED = ["frechet", "gaussian_kl", "mmd2", "mmd_pvalue", "classifier_auc"]


def add_arguments(parser):
    parser.add_argument("--reference", required=True, help="reference embeddings (.npy from adf embed)")
    parser.add_argument("--incoming", required=True, help="incoming embeddings (.npy from adf embed)")
    parser.add_argument("--reference-ids", help="id list of --reference (default: the .csv next to it)")
    parser.add_argument("--incoming-ids", help="id list of --incoming (default: the .csv next to it)")
    parser.add_argument("--manifest", action="append", default=[],
                        help="CSV(s) with an ID column giving more columns for --by/--where/--order-by")
    parser.add_argument("--reference-where", action="append", default=[], metavar="COLUMN=VALUE",
                        help="keep only reference rows with this value (repeatable)")
    parser.add_argument("--incoming-where", action="append", default=[], metavar="COLUMN=VALUE",
                        help="keep only incoming rows with this value (repeatable)")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--by", help="one comparison per value of this column")
    split.add_argument("--window", type=int, help="one comparison per window of N consecutive incoming rows")
    parser.add_argument("--order-by", help="with --window: sort incoming rows by this column first")
    parser.add_argument("--estimators", default=",".join(ESTIMATORS),
                        help=f"comma-separated subset of {','.join(ESTIMATORS)}")
    parser.add_argument("--kl-dim", type=int, default=16, help="PCA dimension of the Gaussian KL")
    parser.add_argument("--permutations", type=int, default=500, help="MMD permutation-test draws")
    parser.add_argument("--folds", type=int, default=5, help="classifier two-sample test folds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.01, help="alarm when the MMD p-value is below this")
    parser.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE",
                        help=f"alarm when an estimator exceeds VALUE ({', '.join(HEADLINE)}; repeatable)")
    parser.add_argument("--min-rows", type=int, default=5, help="skip groups/windows with fewer rows")
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--fail-on-alarm", action="store_true", help="exit status 3 when any row raises an alarm")


class DriftError(ValueError):
    """A bad option or input, with the message to show."""


def _pairs(specs, what):
    out = []
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name:
            raise DriftError(f"{what} {spec!r}: expected NAME=VALUE")
        out.append((name.strip(), value.strip()))
    return out


def _ids_path(npy, given):
    if given:
        return given
    stem = npy[:-4] if npy.endswith(".npy") else npy
    return stem + ".csv" if os.path.exists(stem + ".csv") else stem + ".ids.txt"


def load_side(npy, ids_path, manifests):
    """(X, table): embeddings and a DataFrame (one row each: `ID` plus every known column)."""
    import pandas as pd

    from adf.analysis import load_embeddings

    X, ids = load_embeddings(npy, ids_path)
    table = pd.DataFrame({"ID": ids})
    sources = [ids_path] if ids_path.endswith(".csv") else []
    for path in sources + list(manifests):
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (FileNotFoundError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise DriftError(f"{path}: not a readable CSV ({err})") from None
        key = "ID" if "ID" in df.columns else "id" if "id" in df.columns else None
        if key is None:
            raise DriftError(f"{path}: needs an ID (or id) column")
        df = df.drop_duplicates(key).set_index(key)
        new = [c for c in df.columns if c not in table.columns]
        if new:
            table = table.join(df[new], on="ID")
    return X, table.fillna("")


def _select(X, table, where, side):
    import numpy as np

    keep = np.ones(len(table), dtype=bool)
    for col, value in where:
        if col not in table.columns:
            raise DriftError(f"{side}: no column {col!r} for --{side}-where (columns: {', '.join(table.columns)})")
        keep &= (table[col] == value).to_numpy()
    if keep.sum() == 0:
        raise DriftError(f"{side}: no rows left after --{side}-where")
    return X[keep], table[keep].reset_index(drop=True)


def comparisons(table, by=None, window=None, order_by=None):
    """(name, row indices) of each incoming subset to compare with the reference."""
    import numpy as np

    if by is not None:
        if by not in table.columns:
            raise DriftError(f"incoming: no column {by!r} for --by (columns: {', '.join(table.columns)})")
        return [(str(v), np.flatnonzero((table[by] == v).to_numpy())) for v in sorted(table[by].unique())]
    order = np.arange(len(table))
    if order_by is not None:
        if order_by not in table.columns:
            raise DriftError(f"incoming: no column {order_by!r} for --order-by")
        values = table[order_by]
        numeric = __import__("pandas").to_numeric(values, errors="coerce")
        order = np.argsort((numeric if numeric.notna().all() else values).to_numpy(), kind="stable")
    if window is not None:
        if window < 2:
            raise DriftError("--window must be >= 2")
        return [(f"{start}-{min(start + window, len(order)) - 1}", order[start:start + window])
                for start in range(0, len(order), window)]
    return [("all", order)]


def alarms(row, alpha, thresholds):
    """Why `row` is flagged (a list of reasons; empty = no alarm)."""
    reasons = []
    p = row.get("mmd_pvalue")
    if p is not None and alpha is not None and p < alpha:
        reasons.append(f"mmd_pvalue {p:.3g} < {alpha:g}")
    for name, limit in thresholds:
        value = row.get(HEADLINE.get(name, name))
        if value is not None and value > limit:
            reasons.append(f"{name} {value:.4g} > {limit:g}")
    return reasons


def monitor(X_ref, X_in, table_in, by=None, window=None, order_by=None, min_rows=5, alpha=0.01,
            thresholds=(), **estimator_args):
    """One report row (dict) per incoming group/window; groups below `min_rows` are listed as skipped."""
    from adf.drift.estimators import all_estimators

    rows = []
    for name, idx in comparisons(table_in, by, window, order_by):
        row = {"group": name}
        if len(idx) < min_rows:
            row.update(n_reference=len(X_ref), n_incoming=len(idx), skipped=f"fewer than {min_rows} rows")
        else:
            row.update(all_estimators(X_ref, X_in[idx], **estimator_args))
            reasons = alarms(row, alpha, thresholds)
            row.update(alarm=bool(reasons), alarm_reasons="; ".join(reasons))
        rows.append(row)
    return rows


def plot(rows, path, title):
    """One panel per estimator, x = group/window, alarms in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if "skipped" not in r]
    keys = [k for k in PLOTTED if any(k in r for r in done)]
    fig, axes = plt.subplots(len(keys), 1, figsize=(max(6, 0.6 * len(done) + 3), 1.9 * len(keys) + 0.6),
                             sharex=True, squeeze=False)
    x = list(range(len(done)))
    for ax, key in zip(axes[:, 0], keys):
        y = [r.get(key, float("nan")) for r in done]
        ax.plot(x, y, "-o", color="tab:blue", ms=4)
        hot = [i for i, r in enumerate(done) if r.get("alarm")]
        ax.plot(hot, [y[i] for i in hot], "o", color="tab:red", ms=7, label="alarm" if hot else None)
        ax.set_ylabel(key, fontsize=8)
        if key == "mmd_pvalue":
            ax.set_yscale("log")
        if key == "classifier_auc":
            ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(title, fontsize=9)
    axes[-1, 0].set_xticks(x)
    axes[-1, 0].set_xticklabels([r["group"] for r in done], rotation=30, ha="right", fontsize=8)
    if any(r.get("alarm") for r in done):
        axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown_table(rows):
    cols = ["group", "n_incoming", "frechet", "gaussian_kl", "mmd2", "mmd_pvalue", "classifier_auc", "alarm"]
    cols = [c for c in cols if any(c in r for r in rows)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" if c == "group" else "---:" for c in cols) + "|"]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            if c == "alarm" and "skipped" in r:
                v = "skipped"
            elif isinstance(v, bool):
                v = "yes" if v else "no"
            elif isinstance(v, float):
                v = f"{v:.3g}" if c == "mmd_pvalue" else f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
            cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args):
    import json

    import pandas as pd

    from adf.atomic import atomic_open
    from adf.scorefile import ScoreError

    try:
        which = tuple(e.strip() for e in args.estimators.split(",") if e.strip())
        unknown = [e for e in which if e not in ESTIMATORS]
        if unknown or not which:
            raise DriftError(f"unknown estimator(s) {', '.join(unknown) or '(none given)'}; "
                             f"choose from {', '.join(ESTIMATORS)}")
        thresholds = [(name, float(value)) for name, value in _pairs(args.threshold, "--threshold")]
        bad = [n for n, _ in thresholds if n not in HEADLINE]
        if bad:
            raise DriftError(f"--threshold: unknown estimator(s) {', '.join(bad)} ({', '.join(HEADLINE)})")
        if args.order_by and args.window is None:
            raise DriftError("--order-by needs --window")
        ref_ids = _ids_path(args.reference, args.reference_ids)
        in_ids = _ids_path(args.incoming, args.incoming_ids)
        X_ref, t_ref = load_side(args.reference, ref_ids, args.manifest)
        X_in, t_in = load_side(args.incoming, in_ids, args.manifest)
        if X_ref.shape[1] != X_in.shape[1]:
            raise DriftError(f"{args.reference} holds {X_ref.shape[1]}-D embeddings, {args.incoming} "
                             f"{X_in.shape[1]}-D: embed both with the same model")
        X_ref, t_ref = _select(X_ref, t_ref, _pairs(args.reference_where, "--reference-where"), "reference")
        X_in, t_in = _select(X_in, t_in, _pairs(args.incoming_where, "--incoming-where"), "incoming")
        rows = monitor(X_ref, X_in, t_in, by=args.by, window=args.window, order_by=args.order_by,
                       min_rows=args.min_rows, alpha=args.alpha, thresholds=thresholds, kl_dim=args.kl_dim,
                       permutations=args.permutations, folds=args.folds, seed=args.seed, which=which)
    except (DriftError, ScoreError, ValueError) as err:
        print(f"adf drift: error: {err}", file=sys.stderr)
        return 2
    os.makedirs(args.output, exist_ok=True)
    settings = {k: getattr(args, k) for k in ("reference", "incoming", "by", "window", "order_by", "kl_dim",
                                               "permutations", "folds", "seed", "alpha", "min_rows")}
    settings.update(reference_ids=ref_ids, incoming_ids=in_ids, estimators=list(which), thresholds=dict(thresholds),
                    reference_where=args.reference_where, incoming_where=args.incoming_where,
                    embedding_dim=int(X_ref.shape[1]))
    with atomic_open(os.path.join(args.output, "drift.json")) as fh:
        json.dump({"settings": settings, "rows": rows}, fh, indent=2)
    with atomic_open(os.path.join(args.output, "drift.csv"), newline="") as fh:
        pd.DataFrame(rows).to_csv(fh, index=False)
    if not args.no_plot and any("skipped" not in r for r in rows):
        what = f"per {args.by}" if args.by else f"per window of {args.window}" if args.window else "all"
        plot(rows, os.path.join(args.output, "drift.png"),
             f"drift of {os.path.basename(args.incoming)} from {os.path.basename(args.reference)} "
             f"({len(X_ref)} reference rows), {what}")
    print(markdown_table(rows))
    flagged = [r["group"] for r in rows if r.get("alarm")]
    print(f"adf drift: {len(rows)} comparison(s), {len(flagged)} alarm(s)"
          + (f" ({', '.join(flagged)})" if flagged else "") + f" -> {args.output}/drift.{{json,csv,png}}")
    return 3 if flagged and args.fail_on_alarm else 0
