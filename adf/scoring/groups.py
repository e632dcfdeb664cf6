"""Which subset each trial belongs to, and the Pooled-then-subsets order
every table and plot follows."""
from __future__ import annotations

import numpy as np
import pandas as pd

POOLED = "Pooled"


def subset_codes(trials):
    """(codes, names): each trial's subset as an index into `names` (-1 = none).

    The subset is the `group` column when present (from `--by`), else the ID
    prefix: the text before the first '-' (docs/data.md); an ID without
    '-' has none. Names are sorted; every name has at least one trial.
    """
    if "group" in trials:
        return pd.factorize(trials["group"], sort=True)
    head, sep, _ = np.strings.partition(np.asarray(trials["id"], dtype=str), "-")
    names, codes = np.unique(head, return_inverse=True)
    codes[sep == ""] = -1
    used = np.bincount(codes[codes >= 0], minlength=names.size) > 0
    remap = np.cumsum(used) - 1
    return np.where(codes >= 0, remap[np.maximum(codes, 0)], -1), names[used]


def groups(trials, subsets=None):
    """Yield (name, row indices): Pooled first, then each subset in sorted order.

    `subsets` restricts the subsets to those names (exact, case-sensitive);
    trials in no listed subset still count in Pooled.
    """
    yield POOLED, np.arange(len(trials))
    codes, names = subset_codes(trials)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    wanted = set(names) if subsets is None else set(subsets)
    for g, name in enumerate(names):
        if name in wanted:
            yield str(name), order[bounds[g] : bounds[g + 1]]
