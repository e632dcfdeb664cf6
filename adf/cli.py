"""adf: deepfake speech detection with post-trained self-supervised speech models.

One sub-command per module.

Each sub-command module exposes `add_arguments(parser)` and `run(args) -> int`
and keeps heavy imports (torch, pandas) inside `run`, so `adf --help` and
start-up stay fast.

A user error (a bad file, option or config: adf.errors.USER_ERRORS) ends a
sub-command with one line `adf CMD: error: ...` and exit status 2; `--debug`
shows the traceback instead.
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
    "score-segments": ("adf.localisation.command", "localisation metrics of segment scores (adf detect --resolution)"),
    "export": ("adf.export", "write a checkpoint as a Hugging Face Hub-ready folder (DIR) or an ONNX graph (--onnx)"),
    "serve": ("adf.serve.command", "HTTP service and web page: score uploaded audio (batched across clients)"),
    "average": ("adf.averaging", "average the weights of checkpoints of one model (e.g. the N best)"),
}


def build_parser(command=None):
    """The `adf` parser; with `command`, only that sub-command's module is imported
    (each module's imports, e.g. pandas for merge and score, cost start-up time)."""
    parser = argparse.ArgumentParser(prog="adf", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if command is None or name == command:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    return parser


def main(argv=None):
    from adf.errors import user_error_message

    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if a in SUBCOMMANDS), None)
    args = build_parser(command).parse_args(argv)
    try:
        return args._run(args) or 0
    except Exception as err:  # noqa: BLE001 - user errors become one line; others re-raise
        message = None if args.debug else user_error_message(err)
        if message is None:
            raise
        print(f"adf {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
