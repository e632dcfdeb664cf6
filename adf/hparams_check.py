"""Unknown hyper-parameter keys are errors, not silently ignored settings.

A key in a hparams file (or a `--key value` override) that nothing reads is
almost always a typo (`lerning_rate: 1e-6` leaves the real learning rate as
it was). A top-level key is known when adf's code reads it (CODE_KEYS), when
SpeechBrain takes it as a run option (its RunOptions fields), when a shipped
recipe's hparams file defines it, or when the file itself refers to it
(`!ref <key>`). Anything else is reported with its closest known names.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path

# Keys adf.train, adf.brain and adf.fitting read from the hparams (tests/test_reliability_options.py
# checks this list against the code).
CODE_KEYS = frozenset("""
augment augment_valid average_best checkpointer class_weights crop_max_seconds crop_min_seconds data_folder
epoch_counter experiment init_from input_policy loss lr_scheduler max_batch_seconds max_batch_size method mode
model model_name num_buckets num_workers oc_softmax opt_class optimizer_step_limit output_folder
random_training_window save_folder score_ckpt seed targets tensorboard_logger test_batch_size test_csv
train_csv train_logger valid_batch_size valid_csv valid_step warmup_steps
n_trees depth learning_rate
""".split())

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
_TOP_KEY = re.compile(r"^([A-Za-z_][\w]*)\s*:", re.M)
_REFERENCE = re.compile(r"<([A-Za-z_]\w*)")


def top_level_keys(text):
    return _TOP_KEY.findall(text)


def known_keys():
    """Every name a hparams file may define without it being a typo (module docstring)."""
    import dataclasses

    from speechbrain.utils.run_opts import RunOptions

    known = set(CODE_KEYS) | {f.name for f in dataclasses.fields(RunOptions)}
    for shipped in RECIPES.glob("*/hparams/*.yaml"):
        known.update(top_level_keys(shipped.read_text(encoding="utf-8")))
    return known


def _with_matches(keys, candidates):
    out = []
    for key in keys:
        close = difflib.get_close_matches(key, sorted(candidates), n=3, cutoff=0.6)
        out.append(f"{key}" + (f" (did you mean {' or '.join(close)}?)" if close else " (no similar key)"))
    return out


def check_hparams(text, overrides, path, extra_keys=()):
    """Raise ValueError naming every unknown key of the hparams `text` (file `path`),
    of `extra_keys` (the keys its `base:` chain sets above the root file,
    adf.hparams) and of the `overrides` (a YAML mapping string, as SpeechBrain
    passes it)."""
    import yaml

    defined = list(dict.fromkeys([*top_level_keys(text), *extra_keys]))
    referenced = set(_REFERENCE.findall(text))
    known = known_keys()
    problems = []
    unknown = [k for k in defined if k not in known and k not in referenced and not k.startswith("__")]
    if unknown:
        problems.append(f"{path}: unknown key(s): " + "; ".join(_with_matches(unknown, known)))
    given = yaml.safe_load(overrides) if overrides and overrides.strip() else {}
    if isinstance(given, dict):
        stray = [k for k in given if k not in defined]
        if stray:
            problems.append("override(s) of keys the hparams file does not define: "
                            + "; ".join(_with_matches(stray, set(defined))))
    if problems:
        raise ValueError("; ".join(problems))
