"""Published EERs beside a reproduction: rows of reported numbers for the results table.

A published-results YAML lists systems with the EERs (%) a paper reports on
each test set, and where each number comes from:

    systems:
      - name: XLS-R-2B
        setting: zero-shot               # optional: shown after the name
        source: arXiv 2506.21090, Table 2
        eer: {In-the-Wild: 1.23, ADD2023: 4.67}

Test sets are named as corpora (`adf prepare --list`: In-the-Wild, FakeOrReal,
...) or by their ID prefix (ItW, FoR, ...). `tools/results_table.py
--published FILE` (and recipes/evaluate's `--published`) add one row per
system, labelled `<name>, <setting> (published)`, to the table of measured
EERs, in the columns that table has; a system that shares no column with it is
left out. The sources are listed under the Markdown table and kept in a
`source` column of the CSV.
"""
from __future__ import annotations

import yaml

MARK = " (published)"


class PublishedError(ValueError):
    """A published-results file that cannot be used (one message naming the file)."""


def _prefix_of(test_set):
    """The scoring column (ID prefix) of a corpus name, or the name itself when it is a prefix."""
    from adf.data.corpora import CORPORA

    if test_set in CORPORA:
        return CORPORA[test_set].prefix
    prefixes = {c.prefix for c in CORPORA.values()}
    if test_set in prefixes:
        return test_set
    raise KeyError(test_set)


def read_published(path):
    """[{label, source, eer: {column: EER %}}] from the YAML at `path` (module docstring)."""
    try:
        with open(path, encoding="utf-8") as fin:
            doc = yaml.safe_load(fin)
    except yaml.YAMLError as err:
        raise PublishedError(f"{path}: not valid YAML ({err})") from None
    systems = doc.get("systems") if isinstance(doc, dict) else None
    if not isinstance(systems, list) or not systems:
        raise PublishedError(f"{path}: expected a non-empty list under `systems:`")
    rows, problems = [], []
    for i, entry in enumerate(systems, start=1):
        where = f"system {i}"
        if not isinstance(entry, dict) or not entry.get("name"):
            problems.append(f"{where}: needs a `name`")
            continue
        where = f"system {i} ({entry['name']})"
        if not entry.get("source"):
            problems.append(f"{where}: needs a `source` (where the numbers are reported)")
        eers = entry.get("eer")
        if not isinstance(eers, dict) or not eers:
            problems.append(f"{where}: needs `eer:` mapping test sets to EERs in %")
            continue
        cells = {}
        for test_set, value in eers.items():
            try:
                column = _prefix_of(str(test_set))
            except KeyError:
                problems.append(f"{where}: unknown test set {test_set!r} (a corpus name or ID prefix)")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
                problems.append(f"{where}: EER of {test_set} must be a number in [0, 100] (got {value!r})")
                continue
            cells[column] = float(value)
        label = str(entry["name"]) + (f", {entry['setting']}" if entry.get("setting") else "") + MARK
        rows.append({"label": label, "source": str(entry.get("source", "")), "eer": cells})
    if problems:
        raise PublishedError(f"{path}: " + "; ".join(problems))
    labels = [r["label"] for r in rows]
    if len(set(labels)) != len(labels):
        dup = sorted({lb for lb in labels if labels.count(lb) > 1})
        raise PublishedError(f"{path}: systems listed twice: {', '.join(dup)}")
    return rows


def add_published(table, sets, published):
    """`table` ({row: {column: EER}}) with the published rows that share a column with it.

    Returns (new table, {label: source}) for the rows added; measured rows come
    first, published ones after, in the file's order; a published cell for a
    column the table lacks is dropped (the table shows what was measured)."""
    out = dict(table)
    sources = {}
    for row in published:
        cells = {s: v for s, v in row["eer"].items() if s in sets}
        if not cells:
            continue
        if row["label"] in out:
            raise PublishedError(f"published row {row['label']!r} has the name of a measured one")
        out[row["label"]] = cells
        sources[row["label"]] = row["source"]
    return out, sources


def sources_markdown(sources):
    """The list of sources printed under the Markdown table."""
    if not sources:
        return ""
    lines = ["", "Published rows:"]
    lines += [f"- {label[: -len(MARK)]}: {source}" for label, source in sources.items()]
    return "\n".join(lines) + "\n"
