#!/usr/bin/env python3
"""One EER table for several models on several test sets, as in the paper's results table.

    tools/results_table.py posttrain=exp/scores/posttrain.csv finetune=exp/scores/finetune.csv \
        --key data/test.csv --markdown exp/results.md --csv exp/results.csv

Each score file holds one model's scores on a merged test manifest; test sets
are the ID prefixes (docs/data.md: `ITW-...`, `EGS-...`), so one score file
per model gives every test-set column. Rows = models, columns = test sets plus
Pooled, cells = EER in %. Metrics come from adf.scoring (tools/score_eer.py
gives the full set: minDCF, Cllr, per attack, ...).
"""
import argparse
import math
import os
import sys

# Use the adf package of this checkout, not another installed copy.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from adf.environment import use_repo_environment  # noqa: E402 - standard library only

use_repo_environment()  # called directly without the venv: re-run under <repo>/.venv

from adf import scoring  # noqa: E402


def eer_table(named_scores, key_path):
    """{model: {test set: EER %}} and the ordered test-set names (Pooled last)."""
    key = scoring.read_key(key_path, on_error="skip")[0] if key_path else None
    warn = lambda msg: print(msg, file=sys.stderr)
    table, sets = {}, []
    for name, path in named_scores:
        trials, _ = scoring.load_labelled(path, key, key_path, "skip", warn)
        table[name] = {}
        for row in scoring.score_rows(name, trials):
            table[name][row["subset"]] = 100.0 * row["eer"]
            if row["subset"] not in sets:
                sets.append(row["subset"])
    return table, sorted(s for s in sets if s != scoring.POOLED) + [scoring.POOLED]


def _fmt(value):
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def to_markdown(table, sets):
    lines = ["| Model | " + " | ".join(sets) + " |", "|---|" + "---:|" * len(sets)]
    for model, row in table.items():
        lines.append(f"| {model} | " + " | ".join(_fmt(row.get(s)) for s in sets) + " |")
    return "\n".join(lines) + "\n"


def to_csv(table, sets):
    lines = ["model," + ",".join(sets)]
    for model, row in table.items():
        lines.append(model + "," + ",".join("" if row.get(s) is None or math.isnan(row[s]) else f"{row[s]:.4f}"
                                            for s in sets))
    return "\n".join(lines) + "\n"


def parse_named(items):
    named = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:  # a bare path: the model is named after the file
            name, path = os.path.splitext(os.path.basename(item))[0], item
        named.append((name, path))
    return named


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scores", nargs="+", metavar="[NAME=]SCORES", help="one score file per model")
    parser.add_argument("--key", help="manifest with the labels (needed when the score files have none)")
    parser.add_argument("--markdown", help="write the table as Markdown here")
    parser.add_argument("--csv", help="write the table as CSV here")
    args = parser.parse_args(argv)
    try:
        table, sets = eer_table(parse_named(args.scores), args.key)
    except (scoring.ScoreError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    text = to_markdown(table, sets)
    print("EER (%)\n" + text, end="")
    if args.markdown:
        scoring.write_text_atomic(text, args.markdown)
    if args.csv:
        scoring.write_text_atomic(to_csv(table, sets), args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
