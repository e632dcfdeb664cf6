#!/usr/bin/env python3
"""How far a corpus's real/fake split generalises without a network: a feature-statistics baseline.

    tools/feature_baseline.py egs_data/metadata.csv              # the example corpus
    tools/feature_baseline.py egs_data/metadata.csv --features cepstra excitation --classifier boosting
    tools/feature_baseline.py data/all.csv --root /data --train-splits train --group Speaker
    # beside a recipe's models, in its table (run in recipes/posttrain after ./run.sh):
    tools/feature_baseline.py data/{train,valid,test}.csv --root ../../egs_data --features cepstra \
        excitation --classifier boosting --scores exp/scores/trees.csv
    tools/results_table.py --key data/test.csv --by Attack --seen data/train.csv exp/scores/*.csv

Each clip (16 kHz mono, adf.audio.load_16k, not normalised) becomes one vector made of the
chosen feature sets, the clip statistics of the `stats_trees` detector (adf.models.clip_statistics,
where each is described): `cepstra` (the default), the spectral envelope's LFCC, MFCC and
log-spectrum moments, and `excitation`, the voice-source measures (LP-residual peakedness, band
envelopes pulsing at the pitch period) of voiced frames in the 0-4 kHz band. This tool is for
exploring a corpus (cross-validation, other feature sets, per-measure AUCs); the detector the
recipes train and `adf detect` scores is `stats_trees` (`train.py hparams/stats_trees.yaml`).
A classifier (`--classifier`: a logistic regression on standardised features, or gradient-
boosted trees, which can also flag a value that is too low *or* too high; scikit-learn) is then
1. cross-validated over the training splits leaving one `--group` value out at a time (e.g. one
   language, i.e. its speakers and voices): the EER on groups it never saw, per `--C`, and
2. trained on all of the training splits and scored on `--test-split`, pooled and per attack
   (`--scores` writes these test scores as a detect score file: id, path, logits, prob_real,
   label, with logit_real - logit_fake the classifier's log-odds of real).
The cross-validated EER is the honest figure (it picks nothing on the test split); it bounds
from the other side what a detector trained on these few speakers can be expected to reach.

Metadata: `adf` manifests (ID, Label, Path, Proportion, Attack, ... with $ROOT) or the example
corpus's metadata.csv (file, label, split, attack, language ...).
"""
import argparse
import os
import runpy
import sys
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "adf" / "environment.py"))["use_repo_environment"]()

import numpy as np  # noqa: E402  (after the environment check, which may re-execute this script)

from adf.models.clip_statistics import STATISTICS as FEATURE_SETS, VOICE_SOURCE_NAMES  # noqa: E402

# metadata.csv of egs_data -> manifest column names
EGS_COLUMNS = {"file": "Path", "label": "Label", "split": "Proportion", "attack": "Attack",
               "language": "Language", "speaker": "Speaker"}


def read_tables(paths, root=None):
    """The rows of every metadata file, one after the other (e.g. a recipe's train/valid/test)."""
    import pandas as pd

    return pd.concat([read_table(p, root) for p in paths], ignore_index=True)


def write_scores(table, rows, scores, path):
    """The `rows` of `table` scored `scores` (log-odds of real) as an adf score file; ids are the
    manifest's ID column or, for the example corpus's metadata, the file name's stem (as
    `adf detect` names files)."""
    from adf.inference import Item, Score
    from adf.scorefile import write_score_csv

    out = []
    for i, score in zip(np.flatnonzero(rows), scores):
        path_i = table["Path"][i]
        item_id = table["ID"][i] if "ID" in table else os.path.splitext(os.path.basename(path_i))[0]
        label = int(table["Label"][i] == "real")
        half = float(score) / 2  # a Python float: the file writes repr()
        out.append(Score(Item(str(item_id), path_i, label=label), logit_fake=-half, logit_real=half))
    return write_score_csv(out, path)


def read_table(path, root=None):
    """The rows as a DataFrame with manifest columns and absolute paths."""
    import pandas as pd

    table = pd.read_csv(path)
    if "file" in table.columns:  # the example corpus's metadata.csv
        table = table.rename(columns=EGS_COLUMNS)
        table["Path"] = [os.path.join(root or os.path.dirname(os.path.abspath(path)), p) for p in table["Path"]]
    else:
        table["Path"] = [p.replace("$ROOT", root or "") for p in table["Path"]]
    return table[~table["Path"].str.contains(os.sep + "partial" + os.sep)].reset_index(drop=True)


def fit_scores(features, labels, train, score, c, classifier="logistic"):
    """Scores (higher = real) of rows `score` by a classifier trained on rows `train`: a
    logistic regression with inverse regularisation `c`, or gradient-boosted trees of depth 3
    (`c` unused; deterministic: no subsampling, no early stopping)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if classifier == "boosting":
        model = HistGradientBoostingClassifier(max_depth=3, max_iter=100, early_stopping=False)
    else:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
    model.fit(features[train], labels[train])
    return model.decision_function(features[score])


def print_aucs(table, labels, excitation):
    """Real-vs-attack ROC AUC of each excitation measure (1: real clips score higher; 0: lower;
    0.5: no information), over all clips and within each real speaker (a vocoded fake carries
    the speaker of the prompt it was made from). `excitation`: the rows' voice_source_statistics."""
    from sklearn.metrics import roc_auc_score

    medians = excitation[:, :len(VOICE_SOURCE_NAMES)]
    speakers = table["Speaker"].to_numpy() if "Speaker" in table else np.full(len(table), "-")
    attack = table["Attack"].to_numpy()
    real_speakers = sorted(set(speakers[labels == 1]))
    print("ROC AUC, real vs attack, of each excitation measure: all clips [min-max over real speakers]")
    for a in sorted(set(attack) - {"-"}):
        cells = []
        for k, name in enumerate(VOICE_SOURCE_NAMES):
            rows = (labels == 1) | (attack == a)
            per = [roc_auc_score(labels[r], medians[r, k]) for r in (rows & (speakers == s) for s in real_speakers)
                   if (attack[r] == a).sum() >= 3]
            spread = f" [{min(per):.2f}-{max(per):.2f}]" if per else ""
            cells.append(f"{name} {roc_auc_score(labels[rows], medians[rows, k]):.2f}{spread}")
        print(f"  {a}: " + ", ".join(cells))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metadata", nargs="+", help="manifest CSVs (read one after the other) or egs_data/metadata.csv")
    parser.add_argument("--root", default=None, help="replaces $ROOT (default: the metadata's folder for egs)")
    parser.add_argument("--train-splits", nargs="+", default=["train", "valid"])
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--group", default="Language", help="column left out one value at a time")
    parser.add_argument("--C", type=float, nargs="+", default=[0.001, 0.01, 0.1],
                        help="inverse regularisation of the logistic regression")
    parser.add_argument("--features", nargs="+", choices=sorted(FEATURE_SETS), default=["cepstra"],
                        help="feature sets joined into each clip's vector (module docstring)")
    parser.add_argument("--classifier", choices=["logistic", "boosting"], default="logistic")
    parser.add_argument("--auc", action="store_true",
                        help="also print each excitation measure's real-vs-attack ROC AUC (its median over "
                             "a clip's voiced frames; all clips, and the range over real speakers)")
    parser.add_argument("--scores", metavar="OUT.csv", default=None,
                        help="write the test split's scores as an adf score file (needs one --C)")
    args = parser.parse_args(argv)
    if args.scores and args.classifier == "logistic" and len(args.C) != 1:
        parser.error("--scores writes one classifier's scores: give one --C")

    import torch

    from adf.audio import load_16k
    from adf.metrics import compute_eer

    torch.set_num_threads(1)
    table = read_tables(args.metadata, args.root)
    sets = list(dict.fromkeys(args.features + (["excitation"] if args.auc else [])))
    per_clip = [[FEATURE_SETS[f](wav) for f in sets] for wav in map(load_16k, table["Path"])]
    by_set = {f: np.stack([clip[k] for clip in per_clip]) for k, f in enumerate(sets)}
    features = np.concatenate([by_set[f] for f in args.features], axis=1)
    labels = (table["Label"] == "real").to_numpy().astype(int)
    train = table["Proportion"].isin(args.train_splits).to_numpy()
    test = (table["Proportion"] == args.test_split).to_numpy()
    groups = table[args.group].to_numpy()
    held = sorted(set(groups[train]))
    print(f"{len(table)} clips; training splits {'+'.join(args.train_splits)}: {train.sum()} clips, "
          f"{len(held)} {args.group} groups; test split {args.test_split}: {test.sum()} clips")

    def eer(rows, scores):
        return 100 * compute_eer(scores, labels[rows])[0]

    attacks = sorted(a for a in set(table.loc[test, "Attack"]) if a != "-")
    if args.auc:
        print_aucs(table, labels, by_set["excitation"])
    print(f"{'C':>7}  {'CV pooled':>9}  {'CV per ' + args.group:<28}  {'test':>6}  "
          + "  ".join(f"{a:>10}" for a in attacks))
    for c in (args.C if args.classifier == "logistic" else [None]):  # the trees have no C
        cv = np.zeros(len(table))
        for group in held:
            out = train & (groups == group)
            cv[out] = fit_scores(features, labels, train & ~out, out, c, args.classifier)
        per_group = [f"{eer(train & (groups == g), cv[train & (groups == g)]):.1f}" for g in held]
        scores = np.zeros(len(table))
        scores[test] = fit_scores(features, labels, train, test, c, args.classifier)
        per_attack = []
        for attack in attacks:
            rows = test & ((table["Attack"] == attack) | (table["Label"] == "real")).to_numpy()
            per_attack.append(f"{eer(rows, scores[rows]):10.1f}")
        print(f"{'trees' if c is None else format(c, 'g'):>7}  {eer(train, cv[train]):9.1f}  {' / '.join(per_group):<28}  "
              f"{eer(test, scores[test]):6.1f}  " + "  ".join(per_attack))
        if args.scores:
            print(f"wrote {write_scores(table, test, scores[test], args.scores)} test scores -> {args.scores}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
