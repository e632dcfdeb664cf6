#!/usr/bin/env python3
"""Fine-tune a post-trained detector: python train.py ../posttrain/hparams/<model>.yaml [--key value ...]."""
import os
import sys

# Called directly from a clone: the checkout's adf, under <repo>/.venv when needed.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from adf.environment import use_repo_environment  # noqa: E402 - standard library only

use_repo_environment()

from adf.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
