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
    "embed": ("adf.embed", "pooled embeddings of audio files, folders or manifests (.npy + id list)"),
    "drift": ("adf.drift.monitor", "distances between reference and incoming embeddings, per group or window"),
    "prepare": ("adf.data.prepare", "write the manifest of a corpus"),
    "merge": ("adf.data.merge", "merge per-corpus manifests into train/valid/test"),
    "score": ("adf.scoring", "EER, minDCF, Cllr, AUC ... of score files, pooled and per subset"),
}


def build_parser(command=None):
    """The `adf` parser; with `command`, only that sub-command's module is imported
    (each module's imports, e.g. pandas for merge and score, cost start-up time)."""
    parser = argparse.ArgumentParser(prog="adf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if command is None or name == command:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    args = build_parser(command).parse_args(argv)
    return args._run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
