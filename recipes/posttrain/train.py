#!/usr/bin/env python3
"""Post-train (or fine-tune) an SSL detector: python train.py hparams/<model>.yaml [--key value ...].

The recipe logic lives in adf.train so that every recipe shares one implementation.
"""
import sys

from adf.train import main

if __name__ == "__main__":
    sys.exit(main())
