#!/usr/bin/env python3
"""`adf score-segments` (adf/localisation/command.py) for a python outside adf's environment:

    python tools/score_localisation.py seg.csv --key data/test.csv [--json out.json]
"""
import runpy
import sys
from pathlib import Path

# A python without adf's environment re-runs this under the checkout's .venv, where adf
# is installed (tools/setup_env.sh); adf/environment.py is standard library only.
runpy.run_path(str(Path(__file__).resolve().parents[1] / "adf" / "environment.py"))["use_repo_environment"]()

from adf.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["score-segments", *sys.argv[1:]]))
