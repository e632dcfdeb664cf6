#!/usr/bin/env python3
"""How far a corpus's real/fake split generalises without a network: a feature-statistics baseline.

    tools/feature_baseline.py egs_data/metadata.csv              # the example corpus
    tools/feature_baseline.py data/all.csv --root /data --train-splits train --group Speaker

Each clip (16 kHz mono, adf.audio.load_16k) becomes one vector: the mean and standard deviation
over frames of 30 LFCCs and 30 MFCCs, the standard deviation of their frame-to-frame
differences, and the mean, standard deviation and mean absolute frame-to-frame change of every
4th bin of the 512-point log magnitude spectrum (torchaudio). A logistic regression
(scikit-learn, standardised features) is then
1. cross-validated over the training splits leaving one `--group` value out at a time (e.g. one
   language, i.e. its speakers and voices): the EER on groups it never saw, per `--C`, and
2. trained on all of the training splits and scored on `--test-split`, pooled and per attack.
The cross-validated EER is the honest figure (it picks nothing on the test split); it bounds
from the other side what a detector trained on these few speakers can be expected to reach.

Metadata: `adf` manifests (ID, Label, Path, Proportion, Attack, ... with $ROOT) or the example
corpus's metadata.csv (file, label, split, attack, language ...).
"""
import argparse
import functools
import os
import runpy
import sys
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "adf" / "environment.py"))["use_repo_environment"]()

# metadata.csv of egs_data -> manifest column names
EGS_COLUMNS = {"file": "Path", "label": "Label", "split": "Proportion", "attack": "Attack",
               "language": "Language", "speaker": "Speaker"}


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


@functools.cache
def _cepstra():
    """The LFCC and MFCC transforms, built once (their filterbanks)."""
    import torchaudio

    return (torchaudio.transforms.LFCC(sample_rate=16000, n_filter=70, n_lfcc=30,
                                       speckwargs=dict(n_fft=512, hop_length=160, win_length=320)),
            torchaudio.transforms.MFCC(sample_rate=16000, n_mfcc=30,
                                       melkwargs=dict(n_fft=512, hop_length=160, n_mels=64)))


def clip_features(wav):
    """The feature vector of a 16 kHz waveform [T] (module docstring)."""
    import torch

    parts = []
    for transform in _cepstra():
        c = transform(wav)  # [coefficients, frames]
        parts += [c.mean(1), c.std(1), c.diff(dim=1).std(1)]
    spec = torch.stft(wav, 512, 160, window=torch.hann_window(512), return_complex=True).abs()
    log_spec = (spec + 1e-8).log()[::4]
    parts += [log_spec.mean(1), log_spec.std(1), log_spec.diff(dim=1).abs().mean(1)]
    return torch.cat(parts).numpy()


def fit_scores(features, labels, train, score, c):
    """Logistic-regression scores (higher = real) of rows `score`, trained on rows `train`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
    model.fit(features[train], labels[train])
    return model.decision_function(features[score])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metadata", help="manifest CSV or egs_data/metadata.csv")
    parser.add_argument("--root", default=None, help="replaces $ROOT (default: the metadata's folder for egs)")
    parser.add_argument("--train-splits", nargs="+", default=["train", "valid"])
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--group", default="Language", help="column left out one value at a time")
    parser.add_argument("--C", type=float, nargs="+", default=[0.001, 0.01, 0.1], help="inverse regularisation")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from adf.audio import load_16k
    from adf.metrics import compute_eer

    torch.set_num_threads(1)
    table = read_table(args.metadata, args.root)
    features = np.stack([clip_features(load_16k(p)) for p in table["Path"]])
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
    print(f"{'C':>7}  {'CV pooled':>9}  {'CV per ' + args.group:<28}  {'test':>6}  "
          + "  ".join(f"{a:>10}" for a in attacks))
    for c in args.C:
        cv = np.zeros(len(table))
        for group in held:
            out = train & (groups == group)
            cv[out] = fit_scores(features, labels, train & ~out, out, c)
        per_group = [f"{eer(train & (groups == g), cv[train & (groups == g)]):.1f}" for g in held]
        scores = np.zeros(len(table))
        scores[test] = fit_scores(features, labels, train, test, c)
        per_attack = []
        for attack in attacks:
            rows = test & ((table["Attack"] == attack) | (table["Label"] == "real")).to_numpy()
            per_attack.append(f"{eer(rows, scores[rows]):10.1f}")
        print(f"{c:7g}  {eer(train, cv[train]):9.1f}  {' / '.join(per_group):<28}  "
              f"{eer(test, scores[test]):6.1f}  " + "  ".join(per_attack))
    return 0


if __name__ == "__main__":
    sys.exit(main())
