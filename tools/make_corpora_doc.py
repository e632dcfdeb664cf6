#!/usr/bin/env python3
"""Write docs/corpora.md from the corpus preparers' docstrings (adf/data/corpora/).

    python tools/make_corpora_doc.py           # rewrite docs/corpora.md
    python tools/make_corpora_doc.py --check   # exit 1 when docs/corpora.md is out of date
"""
import argparse
import os
import sys
from pathlib import Path

# Use the adf package of this checkout, not another installed copy.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from adf.environment import use_repo_environment  # noqa: E402 - standard library only

use_repo_environment()  # called directly without the venv: re-run under <repo>/.venv

from adf.atomic import atomic_open  # noqa: E402
from adf.data.prepare import corpora_markdown  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "corpora.md"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the file is up to date")
    parser.add_argument("-o", "--output", default=str(DOC), help=f"file to write (default {DOC})")
    args = parser.parse_args(argv)
    text = corpora_markdown()
    if args.check:
        current = Path(args.output).read_text(encoding="utf-8") if Path(args.output).is_file() else ""
        if current != text:
            print(f"{args.output} is out of date: run python tools/make_corpora_doc.py", file=sys.stderr)
            return 1
        return 0
    with atomic_open(args.output) as fh:
        fh.write(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
