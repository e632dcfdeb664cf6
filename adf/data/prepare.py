"""`adf prepare`: write the manifest of one corpus (docs/data.md, docs/corpora.md).

    adf prepare NAME --root DATA -o NAME.csv [--jobs N] [--meta FILE]
    adf prepare --list
    adf prepare --describe NAME      (layout, metadata and rows of one corpus)

The manifest is written atomically. Files that could not be used (listed but
missing, unreadable, duplicated IDs, bad metadata lines) are left out and
listed with the reason in `<OUT>.skipped.txt`; header results are cached in
`<OUT>.cache.json`, so a re-run only opens new or changed files. The exit
status is 0 when a manifest was written (1 with --strict if anything was
skipped), 2 when the corpus could not be prepared at all.
"""
from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

from adf.atomic import atomic_open


def add_arguments(parser):
    parser.add_argument("name", nargs="?", help="corpus name (see --list)")
    parser.add_argument("--list", action="store_true",
                        help="list the corpora (with NAME: describe that corpus) and exit")
    parser.add_argument("--describe", action="store_true",
                        help="print NAME's layout, metadata and how its rows are built, and exit")
    parser.add_argument("--root", help="data root holding one folder per corpus (default for egs: "
                                       "egs_data/ in the working directory or a folder above it)")
    parser.add_argument("-o", "--output", help="manifest to write (default: <name>.csv)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes reading headers (default: all cores)")
    parser.add_argument("--meta", help="metadata/key file to use instead of the default location")
    parser.add_argument("--segment-seconds", type=float, default=None,
                        help="segment length for segmented corpora (0: whole files)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-cache", action="store_true", help="ignore and do not write the header cache")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any file was skipped")
    parser.add_argument("--check", action="store_true",
                        help="only check that the corpus folder exists under --root (exit 0) or not (exit 3)")
    parser.add_argument("--is-segmented", action="store_true",
                        help="only tell whether the corpus is a segmented test set (exit 0) or not (exit 1)")


def summary(corpus):
    """One line: name, prefix, folder, use and the reference's manifest name."""
    return (f"{corpus.name} (prefix {corpus.prefix}, folder <root>/{corpus.folder}, use: {corpus.use}"
            + (f", reference manifest {corpus.reference_name}.csv" if corpus.reference_name else "") + ")")


def describe(corpus, out=sys.stdout):
    """Name, prefix, folder, use and the preparer's docstring (layout, rows, departures from the reference)."""
    print(summary(corpus), file=out)
    print("\n" + corpus.doc, file=out)


def find_egs_data(start=None):
    """The example corpus: `egs_data/` (holding metadata.csv) in `start` (default: the
    working directory) or the nearest folder above it; None when there is none. Looked
    up from where the user works, not from the installed package, which has no data."""
    start = Path(start or os.getcwd()).absolute()
    for folder in (start, *start.parents):
        if (folder / "egs_data" / "metadata.csv").is_file():
            return folder / "egs_data"
    return None


def list_corpora(out=sys.stdout):
    from adf.data.corpora import CORPORA
    from adf.data.corpora.base import USES

    rows = [(c.name, c.prefix, (c.folder or "(the root itself)"), c.use) for c in CORPORA.values()]
    widths = [max(len(r[i]) for r in rows + [("name", "prefix", "folder", "use")]) for i in range(3)]
    print(f"{'name':<{widths[0]}}  {'prefix':<{widths[1]}}  {'folder':<{widths[2]}}  use", file=out)
    for name, prefix, folder, use in rows:
        print(f"{name:<{widths[0]}}  {prefix:<{widths[1]}}  {folder:<{widths[2]}}  {use}", file=out)
    print("\nuses: " + "; ".join(f"{k} = {v}" for k, v in USES.items()), file=out)


def corpora_markdown():
    """docs/corpora.md: a table of every corpus, then each preparer module's docstring.

    The docstrings are the single source; `tools/make_corpora_doc.py` writes this
    text and a test checks that the committed file matches it."""
    from adf.data.corpora import CORPORA, get_corpus
    from adf.data.corpora.base import USES
    from adf.data.merge import TEST_MANIFESTS, TRAIN_MANIFESTS

    in_paper = {get_corpus(n).name: "train" for n in TRAIN_MANIFESTS}
    in_paper.update({get_corpus(n).name: "test" for n in TEST_MANIFESTS})
    lines = [
        "# Corpora",
        "",
        "<!-- Generated from the docstrings of adf/data/corpora/*.py by `python tools/make_corpora_doc.py`;"
        " edit those, not this file. -->",
        "",
        "Every corpus adf can prepare, with the folder it expects under the data root and how its",
        "manifest rows are built (`adf prepare --describe NAME` prints one of them). The manifest",
        "columns, segmentation and merge rules are in [data.md](data.md). \"paper\" marks the",
        "corpora of the paper's post-training mixture (train) and zero-shot test sets (test).",
        "",
        "| name | prefix | folder under the data root | use | paper |",
        "|---|---|---|---|---|",
    ]
    for c in CORPORA.values():
        lines.append(f"| `{c.name}` | `{c.prefix}` | `{c.folder or '.'}` | {c.use} | {in_paper.get(c.name, '')} |")
    lines += ["", "Uses: " + "; ".join(f"{k} = {v}" for k, v in USES.items()) + "."]
    by_doc = {}  # a module with several corpora documents them once
    for c in CORPORA.values():
        by_doc.setdefault(c.doc, []).append(c)
    for doc, corpora in by_doc.items():
        title, _, body = doc.partition("\n")
        lines += ["", f"## {title.rstrip('.')}", ""]
        lines += [f"- `{c.name}`: prefix `{c.prefix}`, folder `<root>/{c.folder}`, use {c.use}"
                  + (f", reference manifest `{c.reference_name}.csv`" if c.reference_name else "")
                  for c in corpora]
        lines += ["", body.strip()]
    return "\n".join(lines) + "\n"


def write_skipped(path, skips):
    """`<where>\t<reason>` per skipped item; an old report is removed when nothing was skipped."""
    if not skips:
        if os.path.exists(path):
            os.unlink(path)
        return
    with atomic_open(path) as fh:
        for s in skips:
            fh.write(f"{s.where}\t{s.reason}\n")


def run(args):
    from adf.data.corpora import build_manifest, get_corpus
    from adf.data.manifest import write_manifest

    if args.list and not args.name:
        list_corpora()
        return 0
    if not args.name:
        print("adf prepare: give a corpus name, --list, or --describe NAME", file=sys.stderr)
        return 2
    try:
        corpus = get_corpus(args.name)
    except KeyError as err:
        print(f"adf prepare: {err.args[0]}", file=sys.stderr)
        return 2
    if args.list or args.describe:
        describe(corpus)
        return 0
    if args.is_segmented:
        return 0 if corpus.segmented else 1
    root = args.root
    if root is None:
        if corpus.use != "example":  # egs and egs_partial find egs_data/ themselves
            print("adf prepare: --root is required for this corpus", file=sys.stderr)
            return 2
        root = find_egs_data()
        if root is None:
            print(f"adf prepare {corpus.name}: no egs_data/ (with metadata.csv) in {os.getcwd()} or a folder above it; "
                  "pass --root PATH/TO/egs_data", file=sys.stderr)
            return 2
    if args.check:
        folder = Path(root) / corpus.folder if corpus.folder else Path(root)
        if folder.is_dir():
            return 0
        print(f"adf prepare {corpus.name}: {folder} does not exist", file=sys.stderr)
        return 3
    output = args.output or f"{corpus.name}.csv"
    try:
        df, skips = build_manifest(
            corpus, root, jobs=max(1, args.jobs),
            cache_path=None if args.no_cache else f"{output}.cache.json",
            progress=not args.no_progress, meta=args.meta, segment_seconds=args.segment_seconds)
    except (OSError, ValueError, csv.Error) as err:
        print(f"adf prepare {corpus.name}: {err}", file=sys.stderr)
        return 2
    write_manifest(df, output)
    write_skipped(f"{output}.skipped.txt", skips)
    counts = df["Label"].value_counts()
    print(f"{corpus.name}: {len(df)} rows ({counts.get('real', 0)} real, {counts.get('fake', 0)} fake, "
          f"{df['Duration'].sum() / 3600:.2f} h) -> {output}")
    if skips:
        print(f"{corpus.name}: {len(skips)} item(s) skipped, see {output}.skipped.txt", file=sys.stderr)
    return 1 if skips and args.strict else 0
