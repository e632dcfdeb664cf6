#!/usr/bin/env python3
"""Score deepfake-detection score files: EER, minDCF/actDCF, Cllr, AUC and more,
pooled and per subset (ID prefix or a manifest column), with plots and calibration.

    tools/score_eer.py exp/.../scores/ItW.csv
    tools/score_eer.py scores/*.csv --key test.csv --by Attack --pool-missing-class --plot plots/
    tools/score_eer.py eval.txt --key key.txt --calibrate dev.txt --ci 1000 --json eval.json

Labels: 1 = real (bona fide, the target class); higher score = more real.
See adf/scoring.py for the formats and adf/metrics.py for the definitions.
"""
import argparse
import os
import sys

# Use the adf package of this checkout, not another installed copy.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from adf.environment import use_repo_environment  # noqa: E402 - standard library only

use_repo_environment()  # called directly without the venv: re-run under <repo>/.venv

from adf import scoring  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    scoring.add_arguments(parser)
    return scoring.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
