#!/usr/bin/env python3
"""Score deepfake-detection score files: EER, minDCF/actDCF, Cllr, AUC and more,
pooled and per subset (ID prefix or a manifest column), with plots and calibration.

    tools/score_eer.py exp/.../scores/ItW.csv
    tools/score_eer.py scores/*.csv --key test.csv --by Attack --pool-missing-class --plot plots/
    tools/score_eer.py eval.txt --key key.txt --calibrate dev.txt --ci 1000 --json eval.json

Labels: 1 = real (bona fide, the target class); higher score = more real.
See adf/scorefile.py for the formats and adf/metrics.py for the definitions.
"""
import argparse
import runpy
import sys
from pathlib import Path

# A python without adf's environment re-runs this under the checkout's .venv, where adf
# is installed (tools/setup_env.sh); adf/environment.py is standard library only.
runpy.run_path(str(Path(__file__).resolve().parents[1] / "adf" / "environment.py"))["use_repo_environment"]()

from adf import scoring  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    scoring.add_arguments(parser)
    return scoring.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
