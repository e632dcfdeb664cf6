"""Score files: the one place that writes and reads them.

`adf detect`, the recipes' inference stage (adf.train) and `score_items`
users write the detect CSV; `adf score`, tools/score_eer.py, the analysis
and drift tools read it back. Its columns:

    id, path, logit_fake, logit_real, prob_real [, label]

(`label` 1 = real, 0 = fake, when the input gave one). Higher
logit_real - logit_fake = more likely real; `prob_real` is
softmax([logit_fake, logit_real])[1]. Floats are written with `repr`, so they
read back bit-exact. Windowed scoring adds a per-window file with `start` and
`end` (seconds in the file) after `path`.

`read_scores` also reads the two foreign formats the scorer accepts,
recognised from their first line:

* the reference CSV ``ID,Score,Label`` with Score the string
  ``"[fake_logit, real_logit]"``; score = real - fake logit, P(real) its softmax;
* whitespace text ``id score [label]``; the score is used as it is and read
  as log-odds, so P(real) = sigmoid(score).

Every problem row is named (file, line, what is wrong); readers raise
`ScoreError` or, with ``on_error="skip"``, drop the rows and return the
problems so the caller can warn. pandas and numpy are imported inside the
readers: `adf detect` only writes, and its start-up time counts.
"""
from __future__ import annotations

import os

from adf.errors import FileProblems

SCORE_COLUMNS = ["id", "path", "logit_fake", "logit_real", "prob_real"]
WINDOW_COLUMNS = ["id", "path", "start", "end", "logit_fake", "logit_real", "prob_real"]


def prob_real(logit_fake, logit_real):
    """softmax([logit_fake, logit_real])[1], in float64."""
    import torch

    return torch.softmax(torch.tensor([logit_fake, logit_real], dtype=torch.float64), 0)[1].item()


# --- writing -----------------------------------------------------------------


def score_row(score):
    """The score-file row of a finished Score (values as text, floats round-trip exact)."""
    row = {"id": score.item.id, "path": score.item.path, "logit_fake": repr(score.logit_fake),
           "logit_real": repr(score.logit_real), "prob_real": repr(score.prob_real)}
    if score.item.label is not None:
        row["label"] = str(score.item.label)
    return row


def window_rows(score):
    """One row per window of a windowed Score (start/end in seconds in the file)."""
    rows = []
    for w in score.windows:
        row = {"id": score.item.id, "path": score.item.path, "start": repr(w.start), "end": repr(w.end),
               "logit_fake": repr(w.logit_fake), "logit_real": repr(w.logit_real),
               "prob_real": repr(prob_real(w.logit_fake, w.logit_real))}
        if score.item.label is not None:
            row["label"] = str(score.item.label)
        rows.append(row)
    return rows


def write_score_csv(scores, path):
    """Write the rows of the finished Scores to `path` atomically; returns the row count.
    (For one-shot scoring; `adf detect` builds its output with ResumableCSV.)"""
    import pandas as pd

    from adf.atomic import write_csv_atomic

    rows = [score_row(s) for s in scores if s.ok]
    columns = SCORE_COLUMNS + (["label"] if any("label" in r for r in rows) else [])
    write_csv_atomic(pd.DataFrame(rows, columns=columns), path)
    return len(rows)


# --- reading -----------------------------------------------------------------


def read_score_rows(path):
    """Rows (dicts of text) of a detect score CSV, [] when it does not exist.

    Only newline-terminated lines count, and rows whose logits do not parse are
    dropped, so a side file cut off by a kill yields exactly its complete rows.
    Raises ValueError when the file is not a score CSV."""
    if not os.path.exists(path):
        return []
    import io

    import pandas as pd

    with open(path, encoding="utf-8", newline="") as fh:
        text = fh.read()
    text = text[: text.rfind("\n") + 1]
    if not text:
        return []
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{path}: not a readable score CSV ({err})") from None
    missing = [c for c in ("id", "path", "logit_fake", "logit_real") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a score CSV (missing column(s): {', '.join(missing)})")
    logits = df[["logit_fake", "logit_real"]].apply(pd.to_numeric, errors="coerce")
    return df[logits.notna().all(axis=1)].to_dict("records")


LABEL_VALUES = {"1": 1, "real": 1, "bonafide": 1, "bona-fide": 1, "0": 0, "fake": 0, "spoof": 0}
TEXT_HEADER_WORDS = {"score", "scores"}


class ScoreError(FileProblems):
    """An unusable score or key file; `problems` lists one line per bad row."""


def first_line(path):
    """The first non-blank line of a text file; ScoreError when there is none."""
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    return line
    except FileNotFoundError:
        raise ScoreError(path, ["file does not exist"]) from None
    except (UnicodeDecodeError, IsADirectoryError) as err:
        raise ScoreError(path, [f"not a readable text file ({err})"]) from None
    raise ScoreError(path, ["file is empty"])


def read_table(path, **kwargs):
    """The file as a table of strings; ScoreError when it cannot be parsed."""
    import pandas as pd

    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, ValueError) as err:
        raise ScoreError(path, [f"not a readable table ({str(err).strip()})"]) from None


def parse_labels(values):
    """Label strings -> (float array of 1.0 / 0.0 with NaN where empty or invalid, invalid mask)."""
    import numpy as np

    mapped = values.str.strip().str.lower().map(LABEL_VALUES)
    empty = values.str.strip() == ""
    invalid = mapped.isna() & ~empty
    return mapped.to_numpy(dtype=np.float64, na_value=np.nan), invalid.to_numpy()


def find_columns(header, *names):
    """Map each wanted column name (case-insensitive) to the header's spelling, or None."""
    lower = {c.strip().lower(): c for c in header}
    return [lower.get(n) for n in names]


def read_scores(path, on_error="raise"):
    """Read one score file; returns (DataFrame, problems, description).

    The frame has columns id, score, prob_real, label (1.0 / 0.0 / NaN =
    unknown) and keeps the file's line number in `line` for messages.
    `description` says which score column was used.
    """
    import numpy as np
    import pandas as pd

    from adf import metrics

    if on_error not in ("raise", "skip"):
        raise ValueError("on_error must be 'raise' or 'skip'")
    first = first_line(path)
    header = [c.strip() for c in first.rstrip("\n").split(",")]
    problems = []
    score_problem = "score is missing, not a number, NaN or infinite"
    if "," in first:
        df = read_table(path)
        id_col, fake_col, real_col, prob_col, label_col, score_col = find_columns(
            df.columns, "id", "logit_fake", "logit_real", "prob_real", "label", "score"
        )
        if id_col is None:
            raise ScoreError(path, [f"CSV without an id/ID column (header: {','.join(header)})"])
        if fake_col and real_col:
            fake = pd.to_numeric(df[fake_col], errors="coerce").to_numpy(np.float64)
            real = pd.to_numeric(df[real_col], errors="coerce").to_numpy(np.float64)
            description = f"score = {real_col} - {fake_col}"
            if prob_col:
                prob = pd.to_numeric(df[prob_col], errors="coerce").to_numpy(np.float64)
                description += f"; P(real) = {prob_col}"
            else:
                prob = None
                description += "; P(real) = softmax of the logits"
        elif score_col:
            pair = df[score_col].str.extract(r"^\s*\[\s*([^,\]]+?)\s*,\s*([^,\]]+?)\s*\]\s*$")
            prob = None
            if pair[0].notna().any():  # reference format "[fake_logit, real_logit]"
                fake = pd.to_numeric(pair[0], errors="coerce").to_numpy(np.float64)
                real = pd.to_numeric(pair[1], errors="coerce").to_numpy(np.float64)
                description = f"score = real - fake logit of {score_col} '[fake, real]'; P(real) = softmax"
                score_problem = f"{score_col} is not '[fake_logit, real_logit]' with two finite numbers"
            else:  # a plain numeric score column
                fake = np.zeros(len(df))
                real = pd.to_numeric(df[score_col], errors="coerce").to_numpy(np.float64)
                description = f"score = {score_col}; P(real) = sigmoid(score)"
        else:
            raise ScoreError(path, [f"CSV without logit_fake/logit_real or Score columns (header: {','.join(header)})"])
        ids = df[id_col].str.strip()
        labels, bad_label = parse_labels(df[label_col]) if label_col else (np.full(len(df), np.nan), np.zeros(len(df), bool))
        line = np.arange(len(df)) + 2
        score = real - fake
    else:
        fields = first.split()
        has_header = len(fields) >= 2 and fields[1].lower() in TEXT_HEADER_WORDS
        df, line = read_fields(path, r"\s+", has_header, ["id", "score", "label"])
        ids = df[0].str.strip()
        score = pd.to_numeric(df[1], errors="coerce").to_numpy(np.float64)
        labels, bad_label = parse_labels(df[2].fillna(""))
        prob = None
        description = "score = column 2 of the text file; P(real) = sigmoid(score)"
    prob_from_file = prob is not None
    if prob is None:
        with np.errstate(invalid="ignore"):
            prob = metrics.sigmoid(score)

    out = pd.DataFrame({"id": ids.to_numpy(), "score": score, "prob_real": prob, "label": labels, "line": line})
    checks = [
        (out["id"].isna() | (out["id"] == ""), "empty ID"),
        (~np.isfinite(out["score"]), score_problem),
        (~np.isfinite(out["prob_real"]) & prob_from_file, "prob_real is missing or not a number"),
        (pd.Series(bad_label), "label must be 1/real/bonafide or 0/fake/spoof"),
        (out["id"].duplicated(keep=False), "duplicate ID"),
    ]
    for bad, what in checks:
        for i in np.flatnonzero(bad.to_numpy()):
            problems.append((i, f"line {out.at[i, 'line']}: {what} (ID {out.at[i, 'id']!r})"))
    return drop_bad_rows(path, out, problems, on_error), [f"{path}: {m}" for _, m in sorted(problems)], description


def read_fields(path, sep, has_header, names):
    """Read a header-less table of at most len(names) fields per line.

    Returns (frame with columns 0..len(names)-1, missing fields NaN; the
    1-based file line of each row, pandas skipping blank lines)."""
    import numpy as np

    df = read_table(path, sep=sep, header=None, skiprows=int(has_header))
    with open(path, encoding="utf-8") as fh:
        nonblank = [i + 1 for i, text in enumerate(fh) if text.strip()]
    line = np.asarray(nonblank[int(has_header) : int(has_header) + len(df)])
    if df.shape[1] > len(names):
        extra = df.iloc[:, len(names):].notna().to_numpy() & (df.iloc[:, len(names):] != "").to_numpy()
        wide = np.flatnonzero(extra.any(axis=1))
        raise ScoreError(path, [f"line {line[i]}: more than {len(names)} fields (expected '{' '.join(names)}')"
                                for i in wide])
    return df.reindex(columns=range(len(names)), fill_value=""), line


def drop_bad_rows(path, df, problems, on_error):
    """`df` without the rows named in `problems` ((row, message) pairs), or
    ScoreError listing them when `on_error` is "raise"."""
    if problems and on_error == "raise":
        raise ScoreError(path, [m for _, m in sorted(problems)])
    bad_rows = sorted({i for i, _ in problems})
    return df.drop(index=bad_rows).reset_index(drop=True)
