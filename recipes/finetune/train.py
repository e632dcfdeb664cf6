#!/usr/bin/env python3
"""Fine-tune a post-trained detector: python train.py ../posttrain/hparams/<model>.yaml [--key value ...]."""
import sys

from adf.train import main

if __name__ == "__main__":
    sys.exit(main())
