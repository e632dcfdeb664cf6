#!/usr/bin/env python3
"""One EER table for several models on several test sets, as in the paper's results table.

    tools/results_table.py posttrain=exp/scores/posttrain.csv finetune=exp/scores/finetune.csv \
        --key data/test.csv --markdown exp/results.md --csv exp/results.csv

Each score file holds one model's scores on a merged test manifest; test sets
are the ID prefixes (docs/data.md: `ITW-...`, `EGS-...`), so one score file
per model gives every test-set column. Rows = models, columns = test sets plus
Pooled, cells = EER in %. Metrics come from adf.scoring (tools/score_eer.py
gives the full set: minDCF, Cllr, per attack, ...).

    tools/results_table.py posttrain=... --key data/test.csv --by Attack --seen data/train.csv

`--by COLUMN` groups the trials by a column of the key manifest instead: one row per
value (each attack's fakes against all real trials, the ASVspoof per-attack EER; values
with real trials only are left out) plus Pooled, one column per model. `--seen MANIFEST`
marks the values that manifest (the training set) does not hold as unseen, so a held-out
generator's EER stands on its own row.

    tools/results_table.py posttrain=... --key data/test.csv --published recipes/evaluate/conf/published.yaml

`--published YAML` adds rows of EERs a paper reports (adf.comparison: the file
names each number's source), labelled "(published)", in the test-set columns the
table has, so a reproduction stands beside the paper's numbers.
"""
import argparse
import math
import os
import runpy
import sys
from pathlib import Path

# A python without adf's environment re-runs this under the checkout's .venv, where adf
# is installed (tools/setup_env.sh); adf/environment.py is standard library only.
runpy.run_path(str(Path(__file__).resolve().parents[1] / "adf" / "environment.py"))["use_repo_environment"]()

from adf import comparison, scoring  # noqa: E402
from adf.atomic import write_text_atomic  # noqa: E402


UNSEEN = " (unseen in training)"


def eer_table(named_scores, key_path, by=None, seen_path=None):
    """{model: {test set: EER %}} and the ordered test-set names (Pooled last).

    With `by`, the sets are the values of that key column that hold fake trials, each
    scored against the pooled real trials; with `seen_path` too, values absent from that
    manifest's `by` column get UNSEEN appended."""
    key = scoring.read_key(key_path, by=by, on_error="skip")[0] if key_path else None
    seen = None
    if by and seen_path:
        seen = set(scoring.read_key(seen_path, by=by, on_error="skip")[0]["group"])
    warn = lambda msg: print(msg, file=sys.stderr)
    table, sets = {}, []
    for name, path in named_scores:
        trials, _ = scoring.load_labelled(path, key, key_path, "skip", warn)
        real_only = set()
        if by:
            real_only = set(trials.loc[trials["group"].notna()].groupby("group")["label"].min().loc[lambda v: v == 1].index)
        table[name] = {}
        for row in scoring.score_rows(name, trials, pool_missing_class=bool(by)):
            subset = row["subset"]
            if subset in real_only:
                continue
            if seen is not None and subset != scoring.POOLED and subset not in seen:
                subset += UNSEEN
            table[name][subset] = 100.0 * row["eer"]
            if subset not in sets:
                sets.append(subset)
    return table, sorted(s for s in sets if s != scoring.POOLED) + [scoring.POOLED]


def _fmt(value):
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def to_markdown(table, sets, by=None):
    """Rows = models, columns = test sets; with `by`, rows = its values, columns = models."""
    if by:
        models = list(table)
        lines = [f"| {by} | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
        for s in sets:
            lines.append(f"| {s} | " + " | ".join(_fmt(table[m].get(s)) for m in models) + " |")
        return "\n".join(lines) + "\n"
    lines = ["| Model | " + " | ".join(sets) + " |", "|---|" + "---:|" * len(sets)]
    for model, row in table.items():
        lines.append(f"| {model} | " + " | ".join(_fmt(row.get(s)) for s in sets) + " |")
    return "\n".join(lines) + "\n"


def _csv_cell(value):
    return "" if value is None or math.isnan(value) else f"{value:.4f}"


def to_csv(table, sets, by=None, sources=None):
    """With `sources` ({row: where its numbers come from}, published rows) a `source` column is added."""
    if sources:  # published labels and sources hold commas: quoted by the csv module
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["model", *sets, "source"])
        for model, row in table.items():
            writer.writerow([model, *(_csv_cell(row.get(s)) for s in sets), sources.get(model, "")])
        return buf.getvalue()
    if by:
        models = list(table)
        lines = [by.lower() + "," + ",".join(models)]
        lines += [s + "," + ",".join(_csv_cell(table[m].get(s)) for m in models) for s in sets]
        return "\n".join(lines) + "\n"
    lines = ["model," + ",".join(sets)]
    for model, row in table.items():
        lines.append(model + "," + ",".join(_csv_cell(row.get(s)) for s in sets))
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
    parser.add_argument("--by", help="one row per value of this column of --key (Attack, Language...)")
    parser.add_argument("--seen", metavar="MANIFEST", help="with --by: mark values this manifest lacks as unseen")
    parser.add_argument("--published", metavar="YAML",
                        help="add rows of published EERs with their sources (adf.comparison)")
    args = parser.parse_args(argv)
    if args.by and not args.key:
        parser.error("--by needs --key (a manifest with that column)")
    if args.by and args.published:
        parser.error("--published goes with the per-test-set table, not --by")
    sources = {}
    try:
        table, sets = eer_table(parse_named(args.scores), args.key, args.by, args.seen)
        if args.published:
            table, sources = comparison.add_published(table, sets, comparison.read_published(args.published))
    except (scoring.ScoreError, comparison.PublishedError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    text = to_markdown(table, sets, args.by) + comparison.sources_markdown(sources)
    print("EER (%)\n" + text, end="")
    if args.markdown:
        write_text_atomic(text, args.markdown)
    if args.csv:
        write_text_atomic(to_csv(table, sets, args.by, sources), args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
