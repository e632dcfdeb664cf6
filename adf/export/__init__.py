"""`adf export`: write a detector in a form other tools and places take.

    adf export DIR --ckpt CKPT [--metrics exp/results.csv]    a Hugging Face Hub-ready folder

One module per target, each with `export(args) -> int`; TARGETS maps the
option that asks for a target (its argparse dest) to its module, and `run`
exports every target asked for. A new target adds its option in
`add_arguments` and its line in TARGETS.
"""
from __future__ import annotations

import importlib

TARGETS = {
    "folder": "adf.export.hub_folder",  # DIR: model.safetensors + config.json + README.md
}


def add_arguments(parser):
    parser.add_argument("folder", nargs="?", metavar="DIR",
                        help="write a Hub-ready folder here: model.safetensors, config.json (architecture, "
                             "input policy, checksum) and README.md (model card); `--ckpt DIR` loads it back")
    parser.add_argument("--ckpt", required=True,
                        help="checkpoint to export: a file, an exported folder or a Hub name ORG/NAME[@REVISION]")
    parser.add_argument("--model", default=None, help="architecture name (default: inferred from the checkpoint)")
    parser.add_argument("--input", default=None, metavar="POLICY",
                        help="input policy to record (default: the checkpoint's own; see adf detect --input)")
    parser.add_argument("--metrics", default=None, metavar="RESULTS",
                        help="EER table for the model card: the evaluate recipe's results.csv (or the folder "
                             "holding it, e.g. recipes/evaluate/exp)")
    parser.add_argument("--repo", default=None, metavar="ORG/NAME",
                        help="the Hub repository the folder is meant for (named in the model card's examples)")
    parser.add_argument("--license", default=None, help="license identifier for the model card (e.g. cc-by-nc-sa-4.0)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an existing export")


def run(args):
    from adf.errors import UserError

    asked = [module for dest, module in TARGETS.items() if getattr(args, dest, None)]
    if not asked:
        raise UserError("nothing to export: give DIR (a Hub-ready folder)")
    for module in asked:
        status = importlib.import_module(module).export(args)
        if status:
            return status
    return 0
