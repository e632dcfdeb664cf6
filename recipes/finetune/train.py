#!/usr/bin/env python3
"""Fine-tune a post-trained detector: python train.py ../posttrain/hparams/<model>.yaml [--key value ...]."""
import runpy
import sys
from pathlib import Path

# A python without adf's environment re-runs this under the checkout's .venv, where adf
# is installed (tools/setup_env.sh); adf/environment.py is standard library only.
runpy.run_path(str(Path(__file__).resolve().parents[2] / "adf" / "environment.py"))["use_repo_environment"]()

from adf.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
