#!/usr/bin/env python3
"""Split a manifest into a drift reference set and labelled incoming groups.

    tools/drift_split.py egs.csv --out data/   # reference = 2/3 of the training split's real clips

Writes <out>/reference.csv and <out>/incoming.csv (manifest rows, for `adf embed`) and
<out>/groups.csv (ID,Group, for `adf drift --manifest groups.csv --by Group`):
- reference: the `--reference-label` rows of the `--reference-split` minus a seeded held-back share
  (`--holdout`, drawn within each speaker so the held-back clips come from the same voices);
- incoming groups: `<label>:<split>-heldback` (the held-back rows: no drift expected),
  `<label>:<split>` for that label in every other split (e.g. new speakers), and
  `<other label>:<--group-by value>` for the rest (e.g. one group per attack family).
"""
import argparse
import os
import runpy
import sys
from pathlib import Path

# A python without adf's environment re-runs this under the checkout's .venv, where adf
# is installed (tools/setup_env.sh); adf/environment.py is standard library only.
runpy.run_path(str(Path(__file__).resolve().parents[1] / "adf" / "environment.py"))["use_repo_environment"]()


def split(df, reference_split="train", reference_label="real", holdout=1 / 3, group_by="Attack", seed=0):
    """(reference rows, incoming rows, groups DataFrame ID/Group) of manifest `df`."""
    import numpy as np
    import pandas as pd

    pool = df[(df["Proportion"] == reference_split) & (df["Label"] == reference_label)]
    if pool.empty:
        raise ValueError(f"no {reference_label} rows in split {reference_split!r}")
    rng = np.random.default_rng(seed)
    held = []
    for _, rows in pool.groupby("Speaker", sort=True):
        n = int(round(holdout * len(rows)))
        held.extend(rows.index[rng.permutation(len(rows))[:n]])
    reference = pool.drop(index=held)
    incoming = df.drop(index=reference.index)
    same_label = incoming["Label"] == reference_label
    group = np.where(same_label, reference_label + ":" + incoming["Proportion"],
                     incoming["Label"] + ":" + incoming[group_by].astype(str))
    group = pd.Series(group, index=incoming.index)
    group[incoming.index.isin(held)] = f"{reference_label}:{reference_split}-heldback"
    return reference, incoming, pd.DataFrame({"ID": incoming["ID"], "Group": group})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest")
    parser.add_argument("--out", required=True)
    parser.add_argument("--reference-split", default="train")
    parser.add_argument("--reference-label", default="real")
    parser.add_argument("--holdout", type=float, default=1 / 3)
    parser.add_argument("--group-by", default="Attack")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from adf.atomic import write_csv_atomic
    from adf.data.manifest import ManifestError, read_manifest, write_manifest

    try:
        df, problems = read_manifest(args.manifest, on_error="skip")
        reference, incoming, groups = split(df, args.reference_split, args.reference_label, args.holdout,
                                            args.group_by, args.seed)
    except (ManifestError, ValueError, KeyError) as err:
        print(f"error: {args.manifest}: {err}", file=sys.stderr)
        return 2
    for line in problems:
        print(f"skipped {line}", file=sys.stderr)
    write_manifest(reference, os.path.join(args.out, "reference.csv"))
    write_manifest(incoming, os.path.join(args.out, "incoming.csv"))
    write_csv_atomic(groups, os.path.join(args.out, "groups.csv"))
    counts = groups["Group"].value_counts().sort_index()
    print(f"reference: {len(reference)} rows; incoming: "
          + ", ".join(f"{g} {n}" for g, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
