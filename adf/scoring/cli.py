"""`adf score` / tools/score_eer.py: score files in, metric tables out."""
from __future__ import annotations

import os

from adf import metrics
from adf.atomic import write_text_atomic
from adf.scorefile import ScoreError, read_scores
from adf.scoring.formats import format_markdown, format_text, write_json, write_rows_csv
from adf.scoring.groups import subset_codes
from adf.scoring.keys import attach_labels, read_key
from adf.scoring.plots import write_plots
from adf.scoring.rows import score_rows


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
