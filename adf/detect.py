"""`adf detect`: score audio files, folders or manifests with a detector checkpoint.

    adf detect --ckpt model.ckpt -o scores.csv clip.flac some_folder/ test.csv

Writes one row per input: `id,path,logit_fake,logit_real,prob_real` (+ `label`,
1 = real, when a manifest gives one). Higher logit_real - logit_fake = more
likely real. Preprocessing is the reference's test-time one (mono, 16 kHz,
per-utterance layer norm, whole utterance); `--window/--hop` score long files
in windows instead (each window layer-normed on its own, see adf.inference).

Bad files are reported and skipped. Finished rows go to `OUT.partial` as they
come and `OUT` is written atomically at the end; running the same command
again after a kill or a failure scores only what is missing.
"""
from __future__ import annotations

import os
import sys

# Extensions a folder walk picks up (case-insensitive): what libsndfile reads.
AUDIO_EXTENSIONS = {
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
    ".au", ".snd", ".caf", ".w64", ".rf64", ".sph", ".nist", ".voc", ".htk", ".sd2", ".paf",
}


def add_arguments(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="audio files, folders (searched recursively) or manifest CSVs")
    parser.add_argument("--ckpt", required=True, help="detector checkpoint (.ckpt, .safetensors, ...)")
    parser.add_argument("--model", default=None,
                        help="architecture name (default: inferred from the checkpoint)")
    parser.add_argument("-o", "--output", required=True, help="score CSV to write")
    parser.add_argument("--data-root", default=None, help="replaces $ROOT in manifest paths")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16", "int8"], default="auto",
                        help="backbone precision: auto = bf16 where the device computes it natively "
                             "(CUDA with bf16, CPUs with AMX or AVX-512 BF16), else fp32; fp16 needs CUDA; "
                             "int8 = dynamic quantization of the transformer's linear maps (CPU)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the transformer layers (fused kernels, same scores); the first "
                             "batches pay the compilation (tens of seconds). Meant for large GPU jobs; about "
                             "even on a small CPU (bench/README.md)")
    parser.add_argument("--batch-size", type=int, default=8, help="inputs per batch (length-sorted)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="decoding processes (0 = decode in the main process)")
    parser.add_argument("--window", type=float, default=None,
                        help="score windows of this many seconds, each read, resampled and "
                             "layer-normed on its own (bounded memory for long audio)")
    parser.add_argument("--hop", type=float, default=None, help="window hop in seconds (default: --window)")
    parser.add_argument("--aggregate", choices=["mean", "min"], default="mean",
                        help="utterance score from windows: mean logits, or the most fake window")
    parser.add_argument("--segments", default=None, help="also write per-window scores to this CSV")
    parser.add_argument("--strict", action="store_true", help="stop with an error at the first bad input")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh instead of resuming from an existing output "
                             "(resuming assumes the same checkpoint and options)")


def _walk(folder):
    """Audio files under `folder`, sorted, as (path as given joined with the relative path, relative path)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in filenames:
            if os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS:
                path = os.path.join(dirpath, name)
                found.append((path, os.path.relpath(path, folder)))
    return sorted(found)


def _file_ids(files):
    """Ids for (path, relative path) pairs: the stem, or where stems collide the
    relative path, or where even those collide the path as given."""
    from collections import Counter

    stems = [os.path.splitext(os.path.basename(path))[0] for path, _ in files]
    stem_counts = Counter(stems)
    ids = [stem if stem_counts[stem] == 1 else rel for stem, (_, rel) in zip(stems, files)]
    id_counts = Counter(ids)
    return [i if id_counts[i] == 1 else path for i, (path, _) in zip(ids, files)]


def collect_items(inputs, data_root=None):
    """Items from INPUTs in the order given, plus problems (one line each).
    An audio file listed twice (or found in two folders) is scored once; an
    item whose id an earlier one already has is a problem (ids stay unique)."""
    from adf.inference import Item, manifest_items

    entries, files, problems = [], {}, []  # entries: Items, or audio paths awaiting an id
    for given in inputs:
        if given.lower().endswith(".csv") and not os.path.isdir(given):
            got, bad = manifest_items(given, data_root)
            entries.extend(got)
            problems.extend(bad)
            continue
        found = _walk(given) if os.path.isdir(given) else [(given, given)]
        if not found:
            problems.append(f"{given}: folder holds no audio files")
        for path, rel in found:
            if path not in files:
                files[path] = rel
                entries.append(path)
    ids = dict(zip(files, _file_ids(list(files.items()))))
    items, owners = [], {}
    for item in dict.fromkeys(Item(ids[e], e) if isinstance(e, str) else e for e in entries):
        if item.id in owners:  # score files need unique ids
            problems.append(f"{item.path}: id {item.id!r} is already used by {owners[item.id]}")
            continue
        owners[item.id] = item.path
        items.append(item)
    return items, problems


def run(args):
    import time

    import torch
    from tqdm import tqdm

    from adf.checkpoints import CheckpointError
    from adf.inference import (SCORE_COLUMNS, WINDOW_COLUMNS, ResumableCSV, load_detector, score_items,
                               score_row, window_rows)
    from adf.precision import resolve

    def fail(message):
        print(f"adf detect: error: {message}", file=sys.stderr)
        return 2

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        choice = resolve(args.precision, device)
    except ValueError as err:
        return fail(err)
    if args.batch_size < 1 or args.workers < 0:
        return fail("--batch-size must be >= 1 and --workers >= 0")
    if args.hop is not None and args.window is None:
        return fail("--hop needs --window")
    if args.window is not None and not (args.window > 0 and (args.hop is None or args.hop > 0)):
        return fail("--window and --hop must be > 0 seconds")
    if args.segments and args.window is None:
        return fail("--segments needs --window")

    items, problems = collect_items(args.inputs, args.data_root)
    for line in problems:
        print(f"skipped {line}", file=sys.stderr)
    if args.strict and problems:
        return fail(f"{len(problems)} bad input(s) (--strict)")
    if not items:
        return fail("nothing to score")

    key = lambda row: (row["path"], row["id"])  # noqa: E731
    columns = SCORE_COLUMNS + (["label"] if any(i.label is not None for i in items) else [])
    try:
        out = ResumableCSV(args.output, columns, key, overwrite=args.overwrite)
        finished = {key(row) for row in out.previous}
        segments = None
        if args.segments:
            seg_columns = WINDOW_COLUMNS + columns[len(SCORE_COLUMNS):]
            segments = ResumableCSV(args.segments, seg_columns, lambda r: (r["path"], r["id"], r["start"]),
                                    keep=lambda r: key(r) in finished, overwrite=args.overwrite)
    except (ValueError, OSError) as err:
        return fail(f"{err} (use --overwrite or another output)")
    if segments is not None:
        missing = len(finished - {key(row) for row in segments.previous})
        if missing:
            print(f"note: {missing} input(s) scored earlier have no rows in {args.segments}; "
                  "--overwrite rescores them", file=sys.stderr)
    todo = [item for item in items if (item.path, item.id) not in finished]
    resumed = len(items) - len(todo)
    if resumed:
        print(f"resuming: {resumed} input(s) already scored in {args.output}", file=sys.stderr)

    try:
        model, _ = load_detector(args.ckpt, args.model, device, choice.precision, args.compile)
    except (CheckpointError, KeyError, OSError) as err:
        for csv_file in (out, segments):
            if csv_file is not None:
                csv_file.close()
        return fail(err if isinstance(err, CheckpointError) else f"cannot load checkpoint {args.ckpt}: {err}")

    order = {(item.path, item.id): n for n, item in enumerate(items)}
    position = lambda row: order.get(key(row), len(order))  # noqa: E731
    scored = skipped = 0
    seconds = 0.0
    rows, windows, flushed = [], [], time.monotonic()
    start = time.monotonic()

    def flush():
        nonlocal rows, windows, flushed
        if segments is not None:
            segments.append(windows)  # windows first: a row in OUT means its windows are saved
        out.append(rows)
        rows, windows, flushed = [], [], time.monotonic()

    bar = tqdm(total=0, unit="input", desc="detect", disable=None, file=sys.stderr)
    stopped = False
    try:
        for score in score_items(model, todo, batch_size=args.batch_size, device=device,
                                 precision=choice.precision, workers=args.workers, window=args.window,
                                 hop=args.hop, aggregate=args.aggregate, progress=bar):
            if not score.ok:
                skipped += 1
                bar.write(f"skipped {score.item.path} (id {score.item.id}): {score.error}", file=sys.stderr)
                if args.strict:
                    stopped = True
                    break
                continue
            scored += 1
            seconds += score.seconds
            rows.append(score_row(score))
            windows.extend(window_rows(score))
            if len(rows) >= args.batch_size or time.monotonic() - flushed > 5:
                flush()
    except KeyboardInterrupt:
        flush()
        bar.close()
        out.close()
        if segments is not None:
            segments.close()
        print(f"interrupted: {len(out.previous) + len(out.new)} row(s) kept in {out.partial}; "
              "run the same command again to resume", file=sys.stderr)
        return 130
    flush()
    bar.close()
    total = out.finalize(sort_key=position)
    if segments is not None:
        segments.finalize(sort_key=lambda r: (position(r), float(r["start"])))
    wall = time.monotonic() - start
    skipped += len(problems)
    print(f"adf detect: scored {scored} input(s)"
          + (f" ({resumed} already scored)" if resumed else "")
          + f", skipped {skipped}, {seconds / 3600:.3f} h of audio in {wall:.1f} s "
          f"({seconds / max(wall, 1e-9):.1f}x real time) in {choice.precision} [{choice.reason}] "
          f"-> {args.output} ({total} rows)")
    if stopped:
        return fail("stopped at the first bad input (--strict)")
    if todo and scored == 0:
        return fail("nothing could be scored")
    return 0
