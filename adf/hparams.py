"""Which HyperPyYAML file a recipe loads, and with which overrides.

A hparams file is plain HyperPyYAML. Two conventions on top, both expressed as
HyperPyYAML overrides so that every key stays overridable from the command line:

* `base: FILE` (a path relative to the file): the other keys of this file
  override FILE's (nested mappings merge key by key). A model's file then holds
  only what differs for that model, e.g. `base: posttrain.yaml`,
  `model_name: xlsr_2b`, `max_batch_seconds: 50`. Bases may chain.
* `experiment: finetune` (usually given as `--experiment finetune`): the mapping
  under the `finetune:` key is applied as overrides as well. Fine-tuning is
  post-training with the changes listed there (learning rate, RawBoost, epochs,
  tag), so recipes/finetune and recipes/posttrain's stage 3 read the same
  settings from one place.

Command-line overrides win over both. HyperPyYAML refuses an override whose key
the root file does not define, so a misspelt key in a model file is an error.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import ruamel.yaml

BASE_KEY = "base"
EXPERIMENTS = ("posttrain", "finetune")


@dataclass
class HparamsChain:
    """A hparams file resolved to the file HyperPyYAML loads (`root`, the end of
    the `base:` chain), that file's top level (`root_tree`) and the merged
    overrides of the files above it (`deltas`)."""

    root: Path
    root_tree: dict
    deltas: dict = field(default_factory=dict)

    def keys(self):
        """Top-level keys the loaded hparams will have."""
        return set(self.root_tree) | set(self.deltas)


def _load(path):
    with open(path, encoding="utf-8") as fh:
        tree = ruamel.yaml.YAML().load(fh)
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ValueError(f"{path}: a hparams file is a mapping of keys to values")
    return tree


def _merge(into, update):
    """Recursive dict update (mappings merge, anything else replaces); returns `into`."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


def read_chain(path):
    """Follow `base:` from `path` to the file that defines the hparams."""
    path = Path(path)
    deltas, seen = [], []
    tree = _load(path)
    while BASE_KEY in tree:
        seen.append(path.resolve())
        base = tree.pop(BASE_KEY)
        deltas.append(tree)
        nxt = path.parent / str(base)
        if not nxt.is_file():
            raise FileNotFoundError(f"{path}: its base {base} ({nxt}) does not exist")
        if nxt.resolve() in seen:
            raise ValueError(f"{path}: `base:` chain loops back to {nxt}")
        path, tree = nxt, _load(nxt)
    merged = {}
    for delta in reversed(deltas):  # the most specific file wins
        _merge(merged, delta)
    return HparamsChain(path, tree, merged)


def overrides_for(chain, cli_overrides=None):
    """All overrides to load `chain.root` with: the model deltas, then the
    `finetune:` mapping when the experiment is `finetune`, then `cli_overrides`
    (a YAML string as SpeechBrain's argument parser gives it, or a dict)."""
    cli = cli_overrides or {}
    if isinstance(cli, str):
        cli = ruamel.yaml.YAML().load(cli) or {}
    overrides = _merge({}, chain.deltas)
    layers = (chain.root_tree, chain.deltas, cli)
    experiment = next((layer["experiment"] for layer in reversed(layers) if "experiment" in layer),
                      "posttrain")
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment {experiment!r}: use one of {', '.join(EXPERIMENTS)}")
    if experiment == "finetune":
        changes = {}
        for layer in layers:
            part = layer.get("finetune") or {}
            if not isinstance(part, dict):
                raise ValueError(f"{chain.root}: `finetune:` must map hparams keys to their fine-tuning values")
            _merge(changes, part)
        _merge(overrides, changes)
    return _merge(overrides, cli)
