#!/usr/bin/env python3
"""Convert a checkpoint to safetensors with adf's SSLClassifier keys.

adf refuses pickled checkpoints that need types outside its allow-list,
because unpickling them can run arbitrary code. If you trust the file's
source, convert it once with --trust-pickle and use the converted file:

    python tools/convert_checkpoint.py --trust-pickle checkpoint.pt checkpoint.safetensors

Without --trust-pickle the file is read safely (useful for turning any
supported checkpoint into one mmap-able safetensors file).
"""
from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

# A python without adf's environment re-runs this under the checkout's .venv, where adf
# is installed (tools/setup_env.sh); adf/environment.py is standard library only.
runpy.run_path(str(Path(__file__).resolve().parents[1] / "adf" / "environment.py"))["use_repo_environment"]()

from adf.checkpoints import CheckpointError, convert_checkpoint  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="checkpoint to read (.ckpt, .pt, .safetensors)")
    parser.add_argument("dst", help="safetensors file to write")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="unpickle SRC with full trust (it can run code): only for trusted files")
    args = parser.parse_args(argv)
    if args.trust_pickle:
        print(f"warning: unpickling {args.src} with full trust (--trust-pickle)", file=sys.stderr)
    try:
        ckpt = convert_checkpoint(args.src, args.dst, trust_pickle=args.trust_pickle)
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    head = "with" if ckpt.has_head else "without"
    print(f"wrote {args.dst}: {len(ckpt.state_dict)} tensors ({ckpt.source} checkpoint, {head} head)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
