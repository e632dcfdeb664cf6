"""The 12-column manifest (docs/data.md): reading, validation, writing.

Every row problem is reported as one line naming the file, the row (1-based,
header = row 1, as a spreadsheet shows it), the column and what is wrong.
Readers either raise on the first bad file with every problem listed
(`on_error="raise"`) or drop the bad rows and return the problems
(`on_error="skip"`), so batch jobs can skip and report.
"""
from __future__ import annotations

import os

import pandas as pd

from adf.atomic import write_csv_atomic
from adf.errors import FileProblems

COLUMNS = [
    "ID", "Label", "Duration", "SampleRate", "Path", "Attack", "Speaker",
    "Proportion", "AudioChannel", "AudioEncoding", "AudioBitSample", "Language",
]
LABELS = ("real", "fake")
ROOT_PLACEHOLDER = "$ROOT"
# Optional columns some manifests add: a segment of a longer file, in samples
# at the file's native rate (test-set segmentation without writing new audio).
SEGMENT_COLUMNS = ["Start", "Stop"]


class ManifestError(FileProblems):
    """A manifest that cannot be used; `problems` lists one line per bad row."""


def _row_problems(path, df):
    """Yield (row_index, message) for every invalid cell."""
    dur = pd.to_numeric(df["Duration"], errors="coerce")
    sr = pd.to_numeric(df["SampleRate"], errors="coerce")
    ch = pd.to_numeric(df["AudioChannel"], errors="coerce")
    checks = [
        (df["ID"].isna() | (df["ID"].astype(str).str.strip() == ""), "ID", "empty ID"),
        (~df["Label"].isin(LABELS), "Label", "must be 'real' or 'fake'"),
        (dur.isna() | ~(dur > 0), "Duration", "must be a number > 0 (a missing file?)"),
        (sr.isna() | ~(sr > 0) | (sr % 1 != 0), "SampleRate", "must be a positive integer"),
        (ch.isna() | ~(ch >= 1) | (ch % 1 != 0), "AudioChannel", "must be an integer >= 1"),
        (df["Path"].isna() | (df["Path"].astype(str).str.strip() == ""), "Path", "empty path"),
    ]
    # Segment columns: empty (or -1 in both) = the whole file, Stop -1 = to the
    # end; a value that does not parse, or another negative one, must not
    # silently become "whole file".
    if "Start" in df.columns:
        start = pd.to_numeric(df["Start"].replace("", "-1"), errors="coerce")
        whole = (start == -1) & (pd.to_numeric(df["Stop"].replace("", "-1"), errors="coerce") == -1
                                 if "Stop" in df.columns else True)
        checks.append((start.isna() | ((start < 0) & ~whole) | (start % 1 != 0), "Start",
                       "must be empty or a whole number of samples >= 0"))
    if "Stop" in df.columns:
        stop = pd.to_numeric(df["Stop"].replace("", "-1"), errors="coerce")
        low = start.fillna(0).clip(lower=0) if "Start" in df.columns else 0
        checks.append((stop.isna() | (stop % 1 != 0) | ((stop != -1) & (stop <= low)), "Stop",
                       "must be empty, -1 (to the end) or a whole number of samples > Start"))
    for bad, column, what in checks:
        for i in df.index[bad.fillna(True)]:
            yield i, f"row {i + 2}, column {column}: {what} (got {df.at[i, column]!r})"
    dup = df["ID"].duplicated(keep=False) & df["ID"].notna()
    for i in df.index[dup]:
        yield i, f"row {i + 2}, column ID: duplicate ID {df.at[i, 'ID']!r}"


def read_manifest(path, root=None, on_error="raise", check_files=False, keep_identical_duplicates=False):
    """Read and validate a manifest; returns (DataFrame, problems).

    `root` replaces the `$ROOT` placeholder in `Path`. With `check_files`,
    rows whose audio file does not exist are problems too. Numeric columns
    come back as numbers, the rest as strings. Rows sharing an ID are all
    problems, unless `keep_identical_duplicates` is set: then a row that is an
    exact copy of an earlier one is dropped and reported (never raised on),
    and only IDs whose rows differ remain problems.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError("on_error must be 'raise' or 'skip'")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    except FileNotFoundError:
        raise ManifestError(path, ["file does not exist"]) from None
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise ManifestError(path, [f"not a readable CSV ({err})"]) from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ManifestError(path, [f"missing column(s): {', '.join(missing)}"])
    copies = []
    if keep_identical_duplicates:
        shared = df["ID"].duplicated(keep=False)
        if shared.any():
            same = df[shared].duplicated(keep="first")
            copies = [(i, f"row {i + 2}: identical copy of an earlier row with ID {df.at[i, 'ID']!r}, dropped")
                      for i in same.index[same]]
            df = df.drop(index=[i for i, _ in copies])
    if root is not None:
        df["Path"] = df["Path"].str.replace(ROOT_PLACEHOLDER, str(root).rstrip("/"), n=1, regex=False)
    problems = list(_row_problems(path, df))
    if check_files:
        for i, p in df["Path"].items():
            if p and not os.path.isfile(p):
                problems.append((i, f"row {i + 2}, column Path: file not found ({p})"))
    if problems and on_error == "raise":
        raise ManifestError(path, [m for _, m in sorted(problems, key=lambda x: x[0])])
    bad_rows = sorted({i for i, _ in problems})
    df = df.drop(index=bad_rows).reset_index(drop=True)
    problems += copies
    for col in ("Duration",):
        df[col] = pd.to_numeric(df[col]).astype(float)
    for col in ("SampleRate", "AudioChannel"):
        df[col] = pd.to_numeric(df[col]).astype(int)
    for col in SEGMENT_COLUMNS:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").fillna(-1).astype(int)
    return df, [f"{path}: {m}" for _, m in sorted(problems, key=lambda x: x[0])]


def write_manifest(df, path):
    """Write the 12 columns (plus segment columns when present) in the standard order."""
    cols = COLUMNS + [c for c in SEGMENT_COLUMNS if c in df.columns]
    write_csv_atomic(df[cols], path)
