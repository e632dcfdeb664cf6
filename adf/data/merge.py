"""Merge per-corpus manifests into train.csv, valid.csv and test.csv (docs/data.md, Merging).

The reference's rule, kept:
  * manifests are taken in list order; a missing one is reported and skipped
    (but when none of them exists, a mistyped --manifests, the merge fails);
  * training manifests: `Proportion == "valid"` rows go to valid.csv, every
    other row (train, test, -, ...) to train.csv;
  * train.csv is shuffled once (seed 42), valid.csv keeps list order;
  * test manifests are concatenated in list order into test.csv, their
    `Proportion` ignored.

Changed from the reference:
  * Duplicate IDs inside one manifest: the reference drops every row of such
    an ID. Here an exact copy of an earlier row is dropped (the first one is
    kept); rows that share an ID but differ conflict, so all of them are
    dropped. Both cases are reported.
  * Rows the manifest reader rejects (label not real/fake, Duration -1 for a
    missing file, ...) are dropped and reported; the reference keeps some.
  * Duplicate IDs across manifests are reported. Within one output file the
    first manifest's row wins and later ones are dropped (the loader keys
    items by ID); an ID shared between the training side and test.csv is
    reported as possible leakage and left alone.
  * Optional per-corpus subsampling of the training rows, declared in a
    config keyed by manifest name: `weight` (fraction of rows kept, 0 < w <= 1)
    and `max_hours` (cap on the hours kept), e.g.
    `{"ASVspoof2019-LA": {"weight": 0.5}, "MLS": {"max_hours": 100}}`.
    Rows are drawn in a random order seeded by the merge seed and the corpus
    name, so a corpus's selection does not depend on the other corpora.
    Validation and test rows are never subsampled.
  * `holdout_test`: training corpora whose own test split (`Proportion ==
    "test"`) should be held out into test.csv instead of training on it, as
    the example corpus needs and as users scoring a corpus's official test
    split expect.

  * `valid_from`: manifests that only contribute their `Proportion == "valid"`
    rows to valid.csv (fine-tuning on one corpus, validated on another's dev set).

A recipe names all of this in one YAML corpora config (`--config`):
    train: [ASVspoof2019-LA, ...]     # training manifests, in order
    test: [In-the-Wild, ...]          # test manifests, in order
    holdout_test: []                  # training corpora whose test rows go to test.csv
    sampling: {MLS: {max_hours: 100}}
`train: paper` / `test: paper` stand for the paper's lists (PAPER_LISTS, the one
place they are kept), or give the same on the command line (--train, --test,
--holdout-test, --valid-from).

A split that a listed manifest should feed is never written empty (unless
`allow_empty`): the merge fails and the old files stay. Rows of one audio
file (and segment) under two IDs, and audio files in both the training side
and test.csv, are reported as leakage.

A summary (clips and hours per corpus, label and language) is printed after
merging; problems go to the log and to `merge_problems.txt` next to the outputs.
"""
from __future__ import annotations

import argparse
import logging
import os
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from adf.atomic import atomic_open
from adf.data.manifest import COLUMNS, SEGMENT_COLUMNS, ManifestError, read_manifest, write_manifest

log = logging.getLogger(__name__)

TRAIN_MANIFESTS = (
    "AIShell3", "ASVspoof2019-LA", "ASVspoof2021-LA", "ASVspoof2021-DF", "ASVspoof5", "CFAD",
    "CNCeleb2", "Codecfake-Xie", "CodecFake-Wu", "CVoiceFake_Large", "DECRO", "DFADD",
    "DiffusionDeepfake", "DiffSSD", "DSD", "FLEURS", "FLEURS-R", "HABLA", "LibriTTS",
    "LibriTTS-R", "LibriTTS-Vocoded", "LJSpeech", "MLAAD_v5", "MLS", "SpoofCeleb", "VoiceMOS",
    "VoxCeleb2", "VoxCeleb2-Vocoded", "WaveFake",
)
TEST_MANIFESTS = ("ADD2023", "DeepVoice", "FakeOrReal", "FakeOrReal-norm", "In-the-Wild")
# The reference's lists, in its order, under our corpus names (`adf prepare --list`); a
# corpora config names them as `train: paper` / `test: paper`.
PAPER_LISTS = {"train": TRAIN_MANIFESTS, "test": TEST_MANIFESTS}
SEED = 42
CORPUS = "_corpus"  # bookkeeping column: the manifest a row came from (not written)
SAMPLING_KEYS = ("weight", "max_hours")


@dataclass
class MergeResult:
    """The three output tables (with a `_corpus` column), every problem found,
    informational notes (what sampling kept) and the corpora in merge order."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    order: list = field(default_factory=list)
    fed: tuple = ()  # the splits some listed manifest feeds (train/valid: training list; test)


def check_sampling(config, train_names):
    """Validate a sampling config ({corpus: {weight, max_hours}}); returns it as a dict."""
    config = dict(config or {})
    bad = []
    for name, spec in config.items():
        if name not in train_names:
            bad.append(f"{name!r} is not in the training list")
            continue
        if not isinstance(spec, dict) or not spec or set(spec) - set(SAMPLING_KEYS):
            bad.append(f"{name}: expected a mapping with keys from {SAMPLING_KEYS} (got {spec!r})")
            continue
        w, h = spec.get("weight", 1.0), spec.get("max_hours", float("inf"))
        if not isinstance(w, (int, float)) or not 0 < w <= 1:
            bad.append(f"{name}: weight is the fraction of rows kept, 0 < weight <= 1 (got {w!r})")
        if not isinstance(h, (int, float)) or not h >= 0:
            bad.append(f"{name}: max_hours must be a number >= 0 (got {h!r})")
    if bad:
        raise ValueError("bad sampling config: " + "; ".join(bad))
    return config


def load_sampling(path):
    """Read a sampling config from a YAML file (a mapping corpus -> options)."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a sampling config is a mapping corpus -> {{weight, max_hours}}")
    return data


def _subsample(rows, name, spec, seed):
    """Keep a seeded random subset of `rows`: `weight` of the rows, then at most
    `max_hours` hours (rows whose cumulative duration fits, in the drawn order).
    The kept rows stay in their original order."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    order = rng.permutation(len(rows))
    order = order[: int(round(spec.get("weight", 1.0) * len(rows)))]
    if "max_hours" in spec:
        hours = np.cumsum(rows["Duration"].to_numpy()[order]) / 3600
        order = order[hours <= spec["max_hours"] + 1e-9]
    return rows.iloc[np.sort(order)]


def _read(path, name, problems):
    if not os.path.isfile(path):
        problems.append(f"{path}: manifest of {name} not found, skipped")
        return None
    try:
        df, bad = read_manifest(path, on_error="skip", keep_identical_duplicates=True)
    except ManifestError as err:  # unreadable file or missing columns
        problems.append(f"{path}: manifest of {name} unusable, skipped ({'; '.join(err.problems)})")
        return None
    problems.extend(bad)
    df[CORPUS] = name
    return df


def _concat(frames):
    if not frames:
        return pd.DataFrame(columns=COLUMNS + [CORPUS])
    out = pd.concat(frames, ignore_index=True)
    for col in SEGMENT_COLUMNS:  # rows without a segment get an empty cell, not a float
        if col in out.columns:
            out[col] = out[col].astype("Int64")
    return out


def _drop_cross_duplicates(table, what, problems):
    """Keep the first row of every ID that several manifests share; report the rest."""
    if table.empty:
        return table
    later = table["ID"].duplicated(keep="first")
    if later.any():
        first_corpus = table.loc[~later].set_index("ID")[CORPUS]
        dups = pd.DataFrame({"ID": table.loc[later, "ID"].to_numpy(), "corpus": table.loc[later, CORPUS].to_numpy()})
        dups["first"] = first_corpus.reindex(dups["ID"]).to_numpy()
        for (corpus, first), group in dups.groupby(["corpus", "first"], sort=False):
            problems.append(f"{what}: {len(group)} ID(s) of {corpus} already came from {first} "
                            f"(e.g. {group['ID'].iloc[0]!r}); the later rows are dropped")
    return table[~later].reset_index(drop=True)


def merge(train, test, sampling=None, seed=SEED, holdout_test=(), valid_from=()):
    """Merge manifests. `train`, `test` and `valid_from` are lists of (name, csv path)
    in order; only the validation rows of `valid_from` are used (after the training
    corpora's).

    Returns a MergeResult; nothing is written (see `write_merge`).
    """
    problems, notes = [], []
    sampling = check_sampling(sampling, [n for n, _ in train])
    listed = list(train) + list(test)
    absent = [path for _, path in listed if not os.path.isfile(path)]
    if listed and len(absent) == len(listed):
        folders = sorted({os.path.dirname(p) or "." for p in absent})
        raise ValueError(f"none of the {len(listed)} manifests exists (looked for e.g. {absent[0]}; "
                         f"in {', '.join(folders)}): check --manifests")
    train_parts, valid_parts, test_parts = [], [], []
    for name, path in train:
        df = _read(path, name, problems)
        if df is None:
            continue
        is_valid = df["Proportion"] == "valid"
        held_out = (df["Proportion"] == "test") & (name in holdout_test)
        test_parts.append(df[held_out])
        rows = df[~is_valid & ~held_out]
        if name in sampling:
            kept = _subsample(rows, name, sampling[name], seed)
            notes.append(f"{name}: sampling {sampling[name]} kept {len(kept)} of {len(rows)} training rows "
                            f"({kept['Duration'].sum() / 3600:.2f} of {rows['Duration'].sum() / 3600:.2f} h)")
            rows = kept
        train_parts.append(rows)
        valid_parts.append(df[is_valid])
    for name, path in valid_from:
        df = _read(path, name, problems)
        if df is not None:
            valid_parts.append(df[df["Proportion"] == "valid"])
    unknown = set(holdout_test) - {n for n, _ in train}
    if unknown:
        raise ValueError(f"holdout_test names corpora not in the training list: {sorted(unknown)}")
    for name, path in test:
        df = _read(path, name, problems)
        if df is not None:
            test_parts.append(df)
    train_df = _drop_cross_duplicates(_concat(train_parts), "train.csv", problems)
    valid_df = _drop_cross_duplicates(_concat(valid_parts), "valid.csv", problems)
    test_df = _drop_cross_duplicates(_concat(test_parts), "test.csv", problems)
    for side, df in (("train.csv", train_df), ("valid.csv", valid_df)):
        shared = df["ID"].isin(test_df["ID"])
        if shared.any():
            problems.append(f"{side} and test.csv share {int(shared.sum())} ID(s) "
                            f"(e.g. {df.loc[shared, 'ID'].iloc[0]!r}): possible train/test leakage")
    problems.extend(_path_leakage(train_df, valid_df, test_df))
    if len(train_df):
        train_df = train_df.iloc[np.random.default_rng(seed).permutation(len(train_df))].reset_index(drop=True)
    order = [n for n, _ in list(train) + list(valid_from) + list(test)]
    fed = (("train", "valid") if train else ()) + (("valid",) if valid_from and not train else ()) \
        + (("test",) if test or holdout_test else ())
    return MergeResult(train_df, valid_df, test_df, problems, notes, order, fed)


def _path_leakage(train_df, valid_df, test_df):
    """Leakage the IDs do not show: one audio file (and segment) under two IDs,
    and one audio file both on the training side and in test.csv."""
    problems = []
    tables = (("train.csv", train_df), ("valid.csv", valid_df), ("test.csv", test_df))
    every = _concat([df.assign(_split=name) for name, df in tables if len(df)])
    if every.empty:
        return problems
    segment = [c for c in SEGMENT_COLUMNS if c in every.columns]
    where = every["Path"].astype(str)
    for col in segment:
        where = where + "|" + every[col].astype("string").fillna("")
    twice = where.duplicated(keep=False)
    for _, group in every[twice].groupby(where[twice], sort=False):
        problems.append(f"{group['Path'].iloc[0]}: one audio file under {len(group)} IDs "
                        f"({', '.join(f'{i} in {s}' for i, s in zip(group['ID'], group['_split']))}): "
                        "possible leakage")
    training = set(every.loc[every["_split"] != "test.csv", "Path"])
    shared = sorted(training & set(every.loc[every["_split"] == "test.csv", "Path"]))
    if shared:
        problems.append(f"train/valid and test.csv share {len(shared)} audio file(s) (e.g. {shared[0]}): "
                        "possible train/test leakage")
    return problems


def summarise(result):
    """Clips and hours per corpus (in merge order), label and language of each output, as text."""
    lines = list(result.notes)
    for split in ("train", "valid", "test"):
        df = getattr(result, split)
        lines.append(f"== {split}.csv: {len(df)} clips, {df['Duration'].sum() / 3600:.2f} h")
        if not len(df):
            continue
        for key, title in ((CORPUS, "corpus"), ("Label", "label"), ("Language", "language")):
            table = df.groupby(key)["Duration"].agg(["count", "sum"])
            if key == CORPUS:
                table = table.reindex([c for c in dict.fromkeys(result.order) if c in table.index])
            lines.append(f"  by {title}:")
            for value, (count, seconds) in table.iterrows():
                lines.append(f"    {value:<24} {int(count):>10} clips {seconds / 3600:>10.2f} h")
    return "\n".join(lines)


def write_merge(result, out_dir, allow_empty=False):
    """Write train/valid/test.csv (temp file + rename) and merge_problems.txt.

    Raises ValueError, writing nothing, when a split that a listed manifest
    feeds came out empty (all its manifests missing or unusable), unless
    `allow_empty`: an empty split would silently replace a good one."""
    empty = [s for s in result.fed if not len(getattr(result, s))]
    if empty and not allow_empty:
        raise ValueError(f"{', '.join(s + '.csv' for s in empty)} would be empty (see the problems above); "
                         "nothing written (--allow-empty writes empty splits)")
    os.makedirs(out_dir, exist_ok=True)
    for split in ("train", "valid", "test"):
        df = getattr(result, split)
        if CORPUS in df.columns:
            df = df.drop(columns=CORPUS)
        write_manifest(df, os.path.join(out_dir, f"{split}.csv"))
    report = os.path.join(out_dir, "merge_problems.txt")
    with atomic_open(report) as fh:
        fh.writelines(p + "\n" for p in result.problems)


CONFIG_KEYS = ("train", "test", "holdout_test", "sampling")


def load_config(path):
    """A recipe's corpora config (see the module docstring); missing keys are empty."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    unknown = set(data) - set(CONFIG_KEYS) if isinstance(data, dict) else {"<not a mapping>"}
    if unknown:
        import difflib

        hints = [f"{k}" + "".join(f" (did you mean {m}?)" for m in difflib.get_close_matches(str(k), CONFIG_KEYS, 1))
                 for k in sorted(map(str, unknown))]
        raise ValueError(f"{path}: unknown key(s) {', '.join(hints)}; expected {', '.join(CONFIG_KEYS)}")
    config = {k: data.get(k) or ([] if k != "sampling" else {}) for k in CONFIG_KEYS}
    for key in PAPER_LISTS:
        config[key] = _named_list(config[key], key, path)
    holdout = config["holdout_test"]
    if not isinstance(holdout, list) or not all(isinstance(n, str) and n for n in holdout):
        raise ValueError(f"{path}: holdout_test must be a list of corpus names (got {holdout!r})")
    if not isinstance(config["sampling"], dict):
        raise ValueError(f"{path}: sampling must be a mapping corpus -> {{weight, max_hours}}")
    return config


def _named_list(value, key, where):
    """A list of corpus names, or the word `paper` for the paper's list of that key."""
    if value == "paper" or value == ["paper"]:
        return list(PAPER_LISTS[key])
    if isinstance(value, str) or not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
        raise ValueError(f"{where}: {key} must be a list of corpus names or `paper` (got {value!r})")
    return value


def _resolve(names, manifest_dir):
    """Names -> (name, path): a name ending in .csv is a path, else <manifest_dir>/<name>.csv."""
    out = []
    for n in names:
        if n.endswith(".csv"):
            out.append((os.path.splitext(os.path.basename(n))[0], n))
        else:
            out.append((n, os.path.join(manifest_dir, f"{n}.csv")))
    return out


def add_arguments(parser):
    parser.add_argument("--config", help="recipe corpora config (YAML: train, test, holdout_test, sampling);"
                        " replaces --train/--test/--sampling")
    parser.add_argument("--list-corpora", metavar="CONFIG",
                        help="print the corpus names a config uses (train then test) and exit")
    parser.add_argument("--manifests", default=".", help="folder holding <Name>.csv per corpus")
    parser.add_argument("--out", help="folder for train.csv, valid.csv, test.csv")
    parser.add_argument("--train", nargs="*", default=["paper"],
                        help="training manifests in order (names or .csv paths; default: paper, the reference's 29)")
    parser.add_argument("--test", nargs="*", default=["paper"],
                        help="test manifests in order (default: paper, the reference's 5)")
    parser.add_argument("--holdout-test", nargs="*", default=[],
                        help="training corpora whose own test rows go to test.csv")
    parser.add_argument("--valid-from", nargs="*", default=[],
                        help="manifests whose validation rows (only) go to valid.csv")
    parser.add_argument("--require-valid", action="store_true",
                        help="fail, writing nothing, when valid.csv would be empty")
    parser.add_argument("--sampling", help="YAML {corpus: {weight: w, max_hours: h}} for the training rows")
    parser.add_argument("--seed", type=int, default=SEED, help="shuffle and sampling seed (default 42)")
    parser.add_argument("--allow-empty", action="store_true",
                        help="write a split even when the manifests meant to feed it gave no rows")


def run(args):
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.list_corpora:
        config = load_config(args.list_corpora)
        print("\n".join(dict.fromkeys(config["train"] + config["test"])))
        return 0
    if not args.out:
        raise ValueError("--out is required (the folder for train.csv, valid.csv and test.csv)")
    holdout = args.holdout_test
    if args.config:
        config = load_config(args.config)
        args.train, args.test, sampling, holdout = (config["train"], config["test"],
                                                    config["sampling"], config["holdout_test"])
    else:
        args.train = _named_list(args.train, "train", "--train")
        args.test = _named_list(args.test, "test", "--test")
        sampling = load_sampling(args.sampling) if args.sampling else None
    result = merge(_resolve(args.train, args.manifests), _resolve(args.test, args.manifests), sampling,
                   args.seed, holdout_test=holdout, valid_from=_resolve(args.valid_from, args.manifests))
    if args.require_valid and result.valid.empty:
        for p in result.problems:
            log.warning(p)
        raise SystemExit(f"adf merge: no validation rows (no row has Proportion valid): add a corpus with "
                         f"a validation split (--valid-from; recipes/finetune: --valid_corpus); "
                         f"nothing written to {args.out}")
    for p in result.problems[:50]:
        log.warning(p)
    write_merge(result, args.out, allow_empty=args.allow_empty)
    if len(result.problems) > 50:
        log.warning("... %d more in %s", len(result.problems) - 50, os.path.join(args.out, "merge_problems.txt"))
    print(summarise(result))
    return 0


def merge_main(argv=None):
    """Command-line entry: `merge_main(["--manifests", "data/manifests", "--out", "data"])`."""
    parser = argparse.ArgumentParser(prog="adf merge", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
