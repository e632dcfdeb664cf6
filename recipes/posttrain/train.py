#!/usr/bin/env python3
"""Post-train (or fine-tune) an SSL detector: python train.py hparams/<model>.yaml [--key value ...].

The recipe logic lives in adf.train so that every recipe shares one implementation.
"""
import os
import sys

# Called directly from a clone: the checkout's adf, under <repo>/.venv when needed.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from adf.environment import use_repo_environment  # noqa: E402 - standard library only

use_repo_environment()

from adf.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
