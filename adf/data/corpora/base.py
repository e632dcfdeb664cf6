"""What every corpus preparer shares: the registry, file walking, metadata
reading, and turning a corpus's entries into manifest rows.

A corpus module only says how its files map onto manifest fields: it
registers a generator that yields one `Entry` per audio file it knows about
(and a `Skip` for each metadata line it cannot use). `build_manifest` then
does the rest the same way for all corpora (docs/data.md):

* files listed in metadata but absent are reported, not written with
  Duration -1 (such rows break the loader);
* headers are read from the files themselves, in parallel and cached
  (adf.data.audio_info); unreadable files are reported and left out;
* a duplicated ID keeps its first row and reports the others, instead of the
  reference merge's removal of every copy;
* segmented corpora get one row per segment with Start/Stop in samples at the
  native rate (adf.data.manifest.SEGMENT_COLUMNS).

Every prefix is unique and free of `-`, so scoring groups by the text before
the first `-` never mix corpora.
"""
from __future__ import annotations

import csv
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from adf import audio_file
from adf.data.manifest import COLUMNS, LABELS, ROOT_PLACEHOLDER, SEGMENT_COLUMNS

# What a corpus's rows are for (shown by `adf prepare --list`).
USES = {
    "train": "post-training (Proportion valid -> validation, the rest -> training)",
    "test": "test set (all rows)",
    "finetune": "fine-tuning / test set (segmented)",
    "none": "prepared but not merged by default",
    "example": "embedded example corpus (egs_data)",
}


@dataclass
class Entry:
    """One audio file (or one segment of it) as a corpus preparer sees it.

    `path` is absolute; `file_id` is the part of the ID after `<PREFIX>-`.
    `start`/`stop` (samples at the native rate) select a segment; `stop`
    is clamped to the file length.
    """

    path: Path
    file_id: str
    label: str
    attack: str = "-"
    speaker: str = "-"
    proportion: str = "-"
    language: str = "-"
    start: int | None = None
    stop: int | None = None


@dataclass
class Skip:
    """Something a preparer could not turn into a row: where, and why."""

    where: str
    reason: str


@dataclass
class Context:
    """What a preparer gets: the data root, the corpus folder and --meta."""

    root: Path
    folder: Path
    meta: Path | None = None  # a metadata file given by hand, overriding the default place


@dataclass(frozen=True)
class Corpus:
    """A registered corpus: how `adf prepare --list` shows it and how to prepare it."""

    name: str
    prefix: str
    folder: str
    use: str
    entries: Callable[[Context], Iterable]
    doc: str = ""
    reference_name: str | None = None  # the reference's manifest name, when it differs
    segment_seconds: float | None = None  # default fixed-length segmentation
    segmented: bool = False  # rows carry Start/Stop


CORPORA: dict[str, Corpus] = {}


def register(name, prefix, folder, use, reference_name=None, segment_seconds=None,
             segmented=False):
    """Decorator: register `entries(ctx)` as the preparer of corpus `name`."""
    if use not in USES:
        raise ValueError(f"{name}: unknown use {use!r}")
    if "-" in prefix:
        raise ValueError(f"{name}: prefix {prefix!r} contains '-' (it would split scoring groups)")

    def wrap(fn):
        for other in CORPORA.values():
            if other.prefix.lower() == prefix.lower() or other.name.lower() == name.lower():
                raise ValueError(f"{name}/{prefix} clashes with {other.name}/{other.prefix}")
        doc = (sys.modules[fn.__module__].__doc__ or "").strip()
        CORPORA[name] = Corpus(name, prefix, folder, use, fn, doc, reference_name,
                               segment_seconds, segmented or segment_seconds is not None)
        return fn

    return wrap


def get_corpus(name):
    """Look a corpus up by its name or its reference manifest name."""
    if name in CORPORA:
        return CORPORA[name]
    for corpus in CORPORA.values():
        if corpus.reference_name == name:
            return corpus
    raise KeyError(f"unknown corpus {name!r}; `adf prepare --list` shows them")


# --------------------------------------------------------------------------- helpers

def walk(top, *exts):
    """Every file under `top` whose extension is one of `exts` (case-insensitive),
    sorted by full path, as Paths (adf.audio_file.walk). A missing folder gives an empty list."""
    return [Path(p) for p in audio_file.walk(top, exts)]


def rel_parts(path, top):
    """Path components of `path` below `top`."""
    return Path(path).relative_to(top).parts


def stem(name):
    """File name without its last extension (`a.b.wav` -> `a.b`)."""
    return Path(name).stem


def read_fields(path, min_fields, make):
    """Whitespace-separated metadata without a header: yields `make(fields, where)`
    for each line (an Entry or a Skip), or a Skip for a line with fewer than
    `min_fields` fields. Lines are trimmed first (DECRO lines end in stray
    spaces) and blank lines ignored. Every line counts: none is taken for a
    header (the reference drops the first line of ASVspoof5 and Codecfake)."""
    with open(path, encoding="utf-8") as fh:
        for no, line in enumerate(fh, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < min_fields:
                yield Skip(f"{path}:{no}", f"expected {min_fields} fields, got {len(fields)}")
            else:
                yield make(fields, f"{path}:{no}")


def read_csv_rows(path, required, make):
    """A headed CSV: yields `make(row, where)` per data row (`row` is a dict of
    trimmed strings). Raises naming the file when a required column is missing."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        for no, row in enumerate(reader, 2):
            yield make({k: (v or "").strip() for k, v in row.items() if k is not None}, f"{path}:{no}")


def find_file(ctx, what, *candidates):
    """The first existing file among `candidates` (after --meta); raises listing all tried."""
    tried = ([ctx.meta] if ctx.meta else []) + [Path(c) for c in candidates]
    for c in tried:
        if c.is_file():
            return c
    raise FileNotFoundError(f"{what} not found; looked for: " + ", ".join(str(c) for c in tried)
                            + " (pass --meta FILE)")


def split_of(name, rules, default="-"):
    """First Proportion whose key occurs in `name`; `rules` is [(substring, proportion)]."""
    for key, proportion in rules:
        if key in name:
            return proportion
    return default


# --------------------------------------------------------------------------- build

def _expand_segments(entry, info, seconds):
    """Fixed-length segments of one file (docs/data.md, Test-set segmentation), ID suffix `_seg<k>`."""
    from adf.data.segment import fixed_segments

    out = []
    for k, (start, stop) in enumerate(fixed_segments(info.frames, info.sample_rate, seconds), 1):
        out.append(Entry(entry.path, f"{entry.file_id}_seg{k}", entry.label, entry.attack,
                         entry.speaker, entry.proportion, entry.language, start, stop))
    return out


def _inside_root(path, root):
    """`path` relative to `root` (posix), or None when it escapes the root: a
    metadata path may not reach outside it with `..` or an absolute path. The
    test is on the names (symbolic links inside the root may point anywhere)."""
    norm = os.path.normpath(os.path.join(root, path))
    root = os.path.normpath(root)
    if os.path.commonpath([norm, root]) != root:
        return None
    return Path(os.path.relpath(norm, root)).as_posix()


def _row(corpus, ctx, entry, info, segmented):
    """The manifest row of one entry, or (None, why it cannot be written)."""
    from adf.spreadsheet import safe_cell

    frames = info.frames
    rel = _inside_root(entry.path, ctx.root)
    if rel is None:
        return None, f"outside the data root {ctx.root}"
    # Free text from the corpus metadata is written so spreadsheets show it as text.
    row = {
        "ID": safe_cell(f"{corpus.prefix}-{entry.file_id}"),
        "Label": entry.label,
        "Duration": info.duration,
        "SampleRate": info.sample_rate,
        "Path": f"{ROOT_PLACEHOLDER}/{rel}",
        "Attack": safe_cell(entry.attack),
        "Speaker": safe_cell(entry.speaker),
        "Proportion": entry.proportion,
        "AudioChannel": info.channels,
        "AudioEncoding": info.encoding,
        "AudioBitSample": info.bits,
        "Language": safe_cell(entry.language),
    }
    if segmented:
        start = max(0, entry.start or 0)
        stop = frames if entry.stop is None else min(entry.stop, frames)
        if stop - start <= 0:
            return None, f"segment [{entry.start}, {entry.stop}) is outside the file ({frames} samples)"
        row["Start"], row["Stop"] = start, stop
        row["Duration"] = round((stop - start) / info.sample_rate, 2)
        if row["Duration"] <= 0:
            return None, f"segment of {stop - start} samples rounds to 0.00 s"
    return row, None


def collect(corpus, ctx):
    """Run the corpus's preparer: (entries, skips)."""
    entries, skips = [], []
    for item in corpus.entries(ctx):
        (skips if isinstance(item, Skip) else entries).append(item)
    for e in entries:
        if e.label not in LABELS:
            raise ValueError(f"{corpus.name}: preparer produced label {e.label!r} for {e.path}")
    return entries, skips


def build_manifest(corpus, root, jobs=1, cache_path=None, progress=False, meta=None,
                   segment_seconds=None):
    """Prepare `corpus` under data root `root`: (DataFrame, [Skip]).

    Raises FileNotFoundError when the corpus folder (or a required metadata
    file) does not exist: an empty manifest would hide a wrong --root.
    """
    import pandas as pd

    from adf.data.audio_info import AudioInfo, probe_files

    root = Path(root).absolute()
    folder = root / corpus.folder if corpus.folder else root
    if not folder.is_dir():
        raise FileNotFoundError(f"{corpus.name}: folder {folder} does not exist "
                                f"(expected <root>/{corpus.folder or ''})")
    seconds = segment_seconds if segment_seconds is not None else corpus.segment_seconds
    segmented = corpus.segmented or bool(seconds)  # any corpus can be cut on request
    ctx = Context(root, folder, Path(meta) if meta else None)
    entries, skips = collect(corpus, ctx)

    present = []
    for e in entries:
        if _inside_root(e.path, root) is None:  # never opened, not even probed
            skips.append(Skip(str(e.path), f"outside the data root {root}: a metadata path may not leave it"))
        elif Path(e.path).is_file():
            present.append(e)
        else:
            skips.append(Skip(str(e.path), "listed in the metadata but the file does not exist"))
    infos = probe_files([e.path for e in present], jobs=jobs, cache_path=cache_path,
                        progress=progress, desc=corpus.name)

    rows, first_of = [], {}
    for e in present:
        info = infos[str(e.path)]
        if not isinstance(info, AudioInfo):
            skips.append(Skip(str(e.path), info))
            continue
        parts = _expand_segments(e, info, seconds) if seconds and e.start is None else [e]
        for part in parts:
            row, problem = _row(corpus, ctx, part, info, segmented)
            if problem:
                skips.append(Skip(str(e.path), problem))
            elif row["ID"] in first_of:
                skips.append(Skip(str(e.path), f"duplicate ID {row['ID']} (kept {first_of[row['ID']]})"))
            else:
                first_of[row["ID"]] = str(e.path)
                rows.append(row)
    columns = COLUMNS + (SEGMENT_COLUMNS if segmented else [])
    return pd.DataFrame(rows, columns=columns), skips
