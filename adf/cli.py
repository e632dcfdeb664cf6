"""adf: deepfake speech detection with post-trained self-supervised speech models.

One sub-command per module.

Each sub-command module exposes `add_arguments(parser)` and `run(args) -> int`
and keeps heavy imports (torch, pandas) inside `run`, so `adf --help` and
start-up stay fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
SUBCOMMANDS = {
    "models": ("adf.models.listing", "list the detector architectures and their sizes"),
    "detect": ("adf.detect", "score audio files, folders or manifests with a checkpoint"),
    "prepare": ("adf.data.prepare", "write the manifest of a corpus"),
    "merge": ("adf.data.merge", "merge per-corpus manifests into train/valid/test"),
    "score": ("adf.scoring", "EER, minDCF, Cllr, AUC ... of score files, pooled and per subset"),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="adf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            continue  # not built yet
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args._run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
