"""Metric rows as output: a terminal table, Markdown, JSON and CSV."""
from __future__ import annotations

import json
import math

import pandas as pd

from adf.atomic import write_csv_atomic, write_text_atomic

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
