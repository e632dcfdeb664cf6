#!/usr/bin/env python3
"""Write docs/corpora.md from the corpus preparers' docstrings (adf/data/corpora/).

    python tools/make_corpora_doc.py           # rewrite docs/corpora.md
    python tools/make_corpora_doc.py --check   # exit 1 when docs/corpora.md is out of date
"""
import argparse
import runpy
import sys
from pathlib import Path

# A python without adf's environment re-runs this under the checkout's .venv, where adf
# is installed (tools/setup_env.sh); adf/environment.py is standard library only.
runpy.run_path(str(Path(__file__).resolve().parents[1] / "adf" / "environment.py"))["use_repo_environment"]()

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
