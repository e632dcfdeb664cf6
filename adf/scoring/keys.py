"""Labels for score files: reading a key (a 12-column manifest or an
``id label`` file) and attaching labels to read trials.

Labels are 1 / real / bonafide vs 0 / fake / spoof; a manifest key may also
bring a column to group trials by (``--by``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from adf.scorefile import ScoreError, drop_bad_rows, find_columns, first_line, parse_labels, read_fields, read_table

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
