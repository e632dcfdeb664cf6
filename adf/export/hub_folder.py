"""A detector as a Hugging Face Hub-ready folder (`adf export DIR --ckpt CKPT`).

The folder holds:

* `model.safetensors`: the weights in adf's own checkpoint format (metadata
  naming the architecture, backbone configuration, back-end options and
  input policy; adf.checkpoints.loading), so `--ckpt DIR`, or the folder
  uploaded and given as `--ckpt ORG/NAME`, rebuilds exactly this model;
* `config.json`: the same facts for people and other tools (architecture,
  parameter count, input policy, logit order) plus the sha256 of the weights,
  which loading the folder checks (adf.checkpoints.hub);
* `README.md`: a model card (Hub front matter, what the model is, how to run
  it, its input and output, and the evaluate recipe's EER table with
  `--metrics`).

Upload it with `hf upload ORG/NAME DIR`.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from adf.atomic import atomic_open
from adf.checkpoints.hub import CONFIG_FILE, WEIGHTS_FILE
from adf.errors import UserError

CARD_FILE = "README.md"
LOGITS = ["fake", "real"]  # the order of the two logits of every adf detector
RESULTS_FILE = "results.csv"  # what the evaluate recipe's stage 3 writes (tools/results_table.py)


def export(args):
    """`adf export DIR ...`: writes the folder, prints what it wrote."""
    folder = Path(args.folder)
    written = export_folder(args.ckpt, folder, model_name=args.model, input_policy=args.input,
                            metrics=args.metrics, repo=args.repo, license=args.license, overwrite=args.overwrite)
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    print(f"adf export: {config['architecture']['model_name']} ({config['parameters']:,} parameters, input "
          f"{config['input_policy']['name']}) -> {', '.join(str(p) for p in written)}")
    return 0


def export_folder(ckpt, folder, model_name=None, input_policy=None, metrics=None, repo=None, license=None,
                  overwrite=False):
    """Write the Hub-ready folder of checkpoint `ckpt` (a file, folder or Hub name) to
    `folder`; returns the paths written. Refuses to replace an earlier export unless
    `overwrite` (UserError)."""
    from adf.checkpoints import load_model, save_checkpoint
    from adf.checkpoints.hub import file_sha256, resolve_checkpoint
    from adf.checkpoints.released import released_model_name

    folder = Path(folder)
    paths = [folder / WEIGHTS_FILE, folder / CONFIG_FILE, folder / CARD_FILE]
    existing = [str(p) for p in paths if os.path.lexists(p)]
    if existing and not overwrite:
        raise UserError(f"{folder} already holds {', '.join(existing)} (use --overwrite to replace them)")
    table = read_metrics(metrics) if metrics else None  # before the slow part: a bad file fails fast
    source = resolve_checkpoint(ckpt)
    if Path(source).resolve() == paths[0].resolve():
        raise UserError(f"{ckpt} is the {WEIGHTS_FILE} this export would write; export to another folder")
    model = load_model(source, model_name=model_name, input_policy=input_policy,
                       name_hint=released_model_name(ckpt))
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, paths[0], extra={"exported_from": {"checkpoint": str(ckpt),
                                                              "sha256": file_sha256(source)}})
    config = model_config(model, file_sha256(paths[0]), os.path.getsize(paths[0]))
    with atomic_open(paths[1]) as fh:
        fh.write(json.dumps(config, indent=2) + "\n")
    with atomic_open(paths[2]) as fh:
        fh.write(model_card(config, table, repo or str(folder), license))
    return paths


def model_config(model, sha256, size):
    """config.json of `model`, whose weights file has `sha256` and `size` bytes."""
    from adf import __version__
    from adf.checkpoints.loading import FORMAT
    from adf.input_policy import policy_of
    from adf.models.registry import model_spec

    try:
        spec = model_spec(model.name)
        paper, kind = spec.paper, spec.kind
    except KeyError:
        paper, kind = model.name, None
    architecture = {"model_name": model.name, "paper_name": paper, "kind": kind}
    if hasattr(model, "backbone"):
        architecture.update(backbone=model.backbone_name, backend=model.backend_name,
                            backbone_config=model.config, backend_options=model.backend_options)
    else:
        architecture["model_config"] = model.config
    policy = policy_of(model)
    return {
        "library_name": "adf",
        "adf_version": __version__,
        "format": FORMAT,
        "architecture": json.loads(json.dumps(architecture)),  # tuples -> lists, as JSON reads back
        "parameters": sum(p.numel() for p in model.parameters()),
        "input_policy": {"name": policy.name, "sample_rate": 16000, "channels": 1, "samples": policy.samples,
                         "layer_norm": policy.normalise, "description": describe_policy(policy)},
        "logits": LOGITS,
        "weights": {"file": WEIGHTS_FILE, "sha256": sha256, "bytes": size},
    }


def describe_policy(policy):
    """One sentence saying what the model sees of an input."""
    if policy.samples is None:
        return ("the whole utterance, mixed to mono, resampled to 16 kHz and layer-normed "
                "(zero mean, unit variance)")
    return (f"the first {policy.samples} samples ({policy.samples / 16000:g} s) of the mono 16 kHz waveform, "
            "repeated from the start when shorter, not normalised")


def read_metrics(path):
    """(header, rows) of the evaluate recipe's EER table: `path` is its results.csv or a
    folder holding one. UserError naming the file when it is not such a table."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = [row for row in csv.reader(fh) if row]
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"--metrics {path}: cannot be read ({getattr(err, 'strerror', None) or err})") from None
    if len(rows) < 2 or len(rows[0]) < 2:
        raise UserError(f"--metrics {path}: not an EER table (expected the header `model,<test sets>` and a "
                        "row per model, as the evaluate recipe's results.csv)")
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise UserError(f"--metrics {path}: line {n} has {len(row)} fields, the header {len(rows[0])}")
        for cell in row[1:]:
            try:
                float(cell or "nan")
            except ValueError:
                raise UserError(f"--metrics {path}: line {n}: {cell!r} is not a number") from None
    return rows[0], rows[1:]


def _metrics_markdown(table):
    header, rows = table
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for row in rows:
        lines.append("| " + " | ".join([row[0]] + [f"{float(c):.2f}" if c else "-" for c in row[1:]]) + " |")
    return "\n".join(lines)


def model_card(config, metrics, name, license=None):
    """The README.md model card (Hub front matter, then Markdown)."""
    arch, policy = config["architecture"], config["input_policy"]
    front = ["---", "library_name: adf", "pipeline_tag: audio-classification",
             "tags:", "- audio-classification", "- deepfake-detection", "- anti-spoofing", "- speech"]
    if license:
        front.append(f"license: {license}")
    front.append("---")
    body = [
        f"# {arch['paper_name']} deepfake speech detector",
        "",
        f"A detector for the `adf` toolkit: architecture `{arch['model_name']}` ({arch['paper_name']}), "
        f"{config['parameters']:,} parameters. It gives two logits, [{', '.join(config['logits'])}]; "
        "`prob_real` is their softmax probability of real, and higher `logit_real - logit_fake` means more "
        "likely bona fide speech.",
        "",
        "## Use",
        "",
        "```sh",
        f"adf detect --ckpt {name} -o scores.csv clip.wav some_folder/",
        "```",
        "",
        "```python",
        "from adf import Detector",
        f"detector = Detector.from_pretrained({json.dumps(name)})",
        "print(detector.score([\"clip.wav\"]))",
        "```",
        "",
        "## Input",
        "",
        f"Input policy `{policy['name']}`: {policy['description']}. Audio of any rate and channel count that "
        "libsndfile reads is converted first; `adf detect --window` scores long audio in windows.",
        "",
        "## Files",
        "",
        f"- `{config['weights']['file']}`: weights and the metadata that rebuilds the model "
        f"(sha256 `{config['weights']['sha256']}`)",
        "- `config.json`: architecture, input policy, logit order, checksum",
    ]
    if metrics is not None:
        body += ["", "## Evaluation", "",
                 "Equal error rate (%) per test set, from the `recipes/evaluate` recipe:", "",
                 _metrics_markdown(metrics)]
    return "\n".join(front + body) + "\n"
