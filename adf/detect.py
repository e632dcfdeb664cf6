"""`adf detect`: score audio files, folders or manifests with a detector checkpoint.

    adf detect --ckpt model.ckpt -o scores.csv clip.flac some_folder/ test.csv

Writes one row per input: `id,path,logit_fake,logit_real,prob_real` (+ `label`,
1 = real, when a manifest gives one). Higher logit_real - logit_fake = more
likely real. Audio is mixed to mono and resampled to 16 kHz, then cut and
scaled by the model's input policy, recorded in its checkpoint (adf.input_policy):
the AntiDeepfake models see the whole utterance, layer-normed; the fixed-input
systems (AASIST, RawNet2, SSL + AASIST ...) the first 64,600 samples, tiled
when shorter, unnormalised. `--input` overrides it. `--window/--hop` score
long files in windows instead (each window treated as an utterance of its
own, see adf.inference).

Bad files are reported and skipped. Finished rows go to `OUT.partial` as they
come and `OUT` is written atomically at the end; running the same command
again after a kill or a failure scores only what is missing. `OUT.run.json`
records what produced the rows (checkpoint content hash, every option that
changes a score, adf version; adf.run_record): a re-run resumes only when all
of it is the same and the inputs are the same, and refuses otherwise.
"""
from __future__ import annotations

import os
import sys

from adf.limits import AudioLimits, add_rate_arguments

ID_RULES = ("stem", "path")  # see file_id
# Whole-utterance scoring time grows with the square of the length (attention):
# inputs longer than this get a warning that suggests --window.
LONG_INPUT_SECONDS = 600


def positive_seconds(text):
    """argparse type: a finite number of seconds > 0 (`inf`, `nan`, 0 and negatives are refused)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0 (got {text})")
    return value


def check_device(name):
    """The torch device `name`; ValueError when it is unknown or not present here."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: no CUDA GPU is usable here (torch.cuda.is_available() "
                             "is False); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available here")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name}: adf runs on cpu, cuda or mps")
    return device


def pick_device(name=None, engine="torch"):
    """The device to run on, as a string: `name` checked (check_device), default cuda when usable
    (cpu for the onnxruntime engine, which runs on the CPU only), else cpu."""
    import torch

    default = "cuda" if engine == "torch" and torch.cuda.is_available() else "cpu"
    return str(check_device(name or default))


def add_arguments(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="audio files, folders (searched recursively) or manifest CSVs")
    parser.add_argument("--ckpt", required=True,
                        help="detector checkpoint: a file (.ckpt, .safetensors, ...), a folder written by "
                             "`adf export`, or a Hugging Face Hub model ORG/NAME[@REVISION] (adf models --released)")
    parser.add_argument("--model", default=None,
                        help="architecture name (default: inferred from the checkpoint)")
    parser.add_argument("-o", "--output", required=True, help="score CSV to write")
    parser.add_argument("--data-root", default=None, help="replaces $ROOT in manifest paths")
    parser.add_argument("--ids", choices=ID_RULES, default="stem",
                        help="id of an audio file: its name without extension (stem, default) or its "
                             "path as given, normalised (path); manifest rows keep their ID. Two inputs "
                             "with one id are an error")
    parser.add_argument("--input", default=None, metavar="POLICY",
                        help="input policy: whole (whole utterance, layer-normed) or first-N (the first N "
                             "samples at 16 kHz, tiled when shorter, e.g. first-64600); default: the one the "
                             "checkpoint records (else the model's published one)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16", "int8"], default="auto",
                        help="backbone precision: auto = bf16 where the device computes it natively "
                             "(CUDA with bf16, CPUs with AMX or AVX-512 BF16), else fp32; fp16 needs CUDA; "
                             "int8 = dynamic quantization of the transformer's linear maps (CPU)")
    parser.add_argument("--engine", choices=["torch", "onnxruntime"], default="torch",
                        help="what runs the model: torch (default), or ONNX Runtime, fp32 on the CPU (the "
                             "model is exported once and cached, adf.onnx_engine; same scores as --precision "
                             "fp32 to about 1e-6; its speed against torch is in bench/README.md)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the transformer layers (fused kernels, same scores); the first "
                             "batches pay the compilation (tens of seconds). Meant for large GPU jobs; about "
                             "even on a small CPU (bench/README.md)")
    parser.add_argument("--batch-size", type=int, default=8, help="inputs per batch (length-sorted)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="decoding processes (0 = decode in the main process)")
    parser.add_argument("--window", type=positive_seconds, default=None,
                        help="score windows of this many seconds, each read, resampled and "
                             "layer-normed on its own (bounded memory for long audio)")
    parser.add_argument("--hop", type=positive_seconds, default=None,
                        help="window hop in seconds, at most --window (default: --window)")
    parser.add_argument("--aggregate", choices=["mean", "min"], default="mean",
                        help="utterance score from windows: mean logits, or the most fake window")
    parser.add_argument("--segments", default=None,
                        help="also write per-window scores (--window) or per-segment scores (--resolution) to this CSV")
    parser.add_argument("--max-seconds", type=positive_seconds, default=AudioLimits.max_seconds,
                        help="longest model input (a whole file, segment or window) in seconds; longer "
                             "files are skipped unless scored with --window (default %(default)g)")
    add_rate_arguments(parser)
    parser.add_argument("--embeddings", default=None, metavar="NPY",
                        help="also write the pooled embeddings (.npy, rows in the output's row order; "
                             "`adf embed` does this with the id list beside it)")
    parser.add_argument("--strict", action="store_true", help="stop with an error at the first bad input")
    parser.add_argument("--progress-every", type=float, default=30.0, metavar="SECONDS",
                        help="when stderr is not a terminal, print a progress line this often "
                             "(default %(default)g; 0: after every batch)")
    from adf.localisation.detect import add_arguments as add_localisation_arguments

    add_localisation_arguments(parser)
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh instead of resuming an existing output (resuming needs the "
                             "same checkpoint, score options and inputs; the old output is removed)")


def score_options(args, precision):
    """Every option that changes a score, as recorded with the output (adf.run_record):
    a run resumes an output only when these are equal. Add a key for a new one.
    `precision` is the resolved one (`--precision auto` differs between machines)."""
    windowed = args.window is not None
    return {
        "model": args.model,
        "precision": precision,
        "engine": getattr(args, "engine", "torch"),
        "input": args.input,  # None: the checkpoint's own policy (covered by its hash)
        "window": args.window,
        "hop": (args.hop if args.hop is not None else args.window) if windowed else None,
        "aggregate": args.aggregate if windowed else None,
    }


def file_id(path, rule="stem"):
    """The id of an audio file given or found in a folder. It depends on that
    file alone, never on the other inputs, so adding inputs renames nothing:
    `stem` = the file name without its extension (`data/a/x.flac` -> `x`),
    `path` = the path as given, normalised (`./data//a/x.flac` -> `data/a/x.flac`).
    Ids that begin like a spreadsheet formula are neutralised (adf.spreadsheet)."""
    from adf.spreadsheet import safe_cell

    path = os.path.normpath(path)
    return safe_cell(os.path.splitext(os.path.basename(path))[0] if rule == "stem" else path)


def _same_file_key(path):
    """One key per file, however it is spelled (`./a.wav`, `x/../a.wav`, a link)."""
    try:
        st = os.stat(path)
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", os.path.realpath(path))


class DuplicateIds(ValueError):
    """Two different inputs with one id: the message names both paths of each clash."""


def collect_items(inputs, data_root=None, ids="stem"):
    """Items from INPUTs in the order given, plus problems (one line each).

    Audio files get `file_id(path, ids)`; manifest rows keep their ID. A file
    listed twice, found in two folders or spelled two ways is one input, scored
    once (under its first spelling); an identical manifest row given twice is
    one item. Two different inputs with the same id raise DuplicateIds."""
    from adf.audio_file import walk
    from adf.inference import Item, manifest_items

    items, problems, seen_files, owners, clashes = [], [], set(), {}, []
    for given in inputs:
        if given.lower().endswith(".csv") and not os.path.isdir(given):
            got, bad = manifest_items(given, data_root)
            problems.extend(bad)
        else:
            found = walk(given) if os.path.isdir(given) else [given]
            if not found:
                problems.append(f"{given}: folder holds no audio files")
            got = []
            for path in found:
                same = _same_file_key(path)
                if same not in seen_files:
                    seen_files.add(same)
                    got.append(Item(file_id(path, ids), path))
        for item in got:
            owner = owners.get(item.id)
            if owner is None:
                owners[item.id] = item
                items.append(item)
            elif owner != item:  # score files need unique ids
                clashes.append(f"id {item.id!r} of {item.path} is already the id of {owner.path}")
    if clashes:
        hint = "" if ids == "path" else " (--ids path names audio files by their path)"
        raise DuplicateIds(f"{len(clashes)} duplicate id(s){hint}: " + "; ".join(clashes))
    return items, problems


def output_clashes(args, items, ckpt_file=None):
    """Problems with where `args` would write: an output (or a side file of one)
    that is one of the inputs (audio, manifest, checkpoint: `ckpt_file`, the file
    --ckpt resolved to, default --ckpt), or --segments equal to -o. Writing there
    would destroy an input, so --overwrite does not help."""
    from adf.atomic import side_path
    from adf.run_record import record_path

    inputs = {}
    for path in [ckpt_file or args.ckpt, *(i for i in args.inputs if os.path.isfile(i)), *(item.path for item in items)]:
        inputs.setdefault(_same_file_key(path), path)
    problems = []
    outputs = [(flag, path) for flag, path in (("-o", args.output), ("--segments", args.segments)) if path]
    for flag, path in outputs:
        for written in (path, side_path(path, ".partial"), record_path(path), side_path(path, ".lock")):
            given = inputs.get(_same_file_key(written))
            if given is not None:
                problems.append(f"{flag} {path} would overwrite the input {given}")
    if args.segments and _same_file_key(args.segments) == _same_file_key(args.output):
        problems.append(f"--segments {args.segments} is the same file as -o {args.output}")
    return problems


class _Refused(Exception):
    """Ends `adf detect` with one error line `adf detect: error: ...` (exit status 2)."""


def run(args):
    if getattr(args, "resolution", None) is not None:  # localisation: adf.localisation.detect
        from adf.localisation.detect import run as localise

        return localise(args)
    from adf import shard

    if shard.sharded(args):  # one rank of a torchrun job: score a share, rank 0 merges (adf.shard)
        return shard.run_sharded(args, run)
    try:
        return _run(args)
    except _Refused as err:
        print(f"adf detect: error: {err}", file=sys.stderr)
        return 2


def _run(args):
    import time

    from adf import shard

    device, choice = _settings(args)
    items, problems = _inputs(args)
    ckpt_file, record = _checkpoint_and_record(args, items, choice)
    outputs = _open_outputs(args, items, record)
    todo = [item for item in items if (item.path, item.id) not in outputs.finished]
    resumed = len(items) - len(todo)
    if resumed:
        print(f"resuming: {resumed} input(s) already scored in {args.output}", file=sys.stderr)
    model = _load(args, ckpt_file, device, choice, outputs)
    todo = shard.local_todo(args, model, items, todo)  # under torchrun: this rank's whole batches
    start = time.monotonic()
    counts = _score(args, model, todo, outputs, device, choice.precision)
    if counts is None:  # interrupted: the side files keep the rows
        return 130
    total = outputs.finalize()
    wall = time.monotonic() - start
    counts["skipped"] += len(problems)
    print(f"adf detect: scored {counts['scored']} input(s)"
          + (f" ({resumed} already scored)" if resumed else "")
          + f", skipped {counts['skipped']}, {counts['seconds'] / 3600:.3f} h of audio in {wall:.1f} s "
          f"({counts['seconds'] / max(wall, 1e-9):.1f}x real time) in {choice.precision} [{choice.reason}] "
          f"-> {args.output} ({total} rows)"
          + (f", embeddings -> {args.embeddings}" if outputs.store is not None else ""))
    if counts["stopped"]:
        raise _Refused("stopped at the first bad input (--strict)")
    if todo and counts["scored"] == 0 and not resumed:  # a resumed output with only bad inputs left is complete
        if counts["nonfinite"] == len(todo):
            raise _Refused(f"the model gave NaN or infinite logits for every input: {args.ckpt} is broken "
                           f"(or --precision {args.precision} overflows it)")
        raise _Refused("nothing could be scored")
    return 0


def _settings(args):
    """(device, precision Choice) of `args`; _Refused for options that cannot work together."""
    from adf.inference import resolve_engine

    try:
        device = pick_device(args.device, args.engine)
        choice = resolve_engine(args.engine, args.precision, device, args.compile)
    except ValueError as err:
        raise _Refused(err) from None
    args.precision = choice.precision  # what changes the scores (and is recorded for resuming): not "auto"
    if args.batch_size < 1 or args.workers < 0:
        raise _Refused("--batch-size must be >= 1 and --workers >= 0")
    if args.hop is not None and args.window is None:
        raise _Refused("--hop needs --window")
    if args.hop is not None and args.hop > args.window:
        raise _Refused(f"--hop {args.hop:g} is longer than --window {args.window:g}: the audio between "
                       "windows would never be scored")
    if args.segments and args.window is None:
        raise _Refused("--segments needs --window")
    if not 0 < args.min_rate <= args.max_rate:
        raise _Refused("--min-rate and --max-rate must be > 0 and min <= max")
    if args.input is not None:
        from adf.input_policy import get_policy

        try:
            get_policy(args.input)
        except ValueError as err:
            raise _Refused(err) from None
    return device, choice


def _inputs(args):
    """(items, problems) of the INPUTs; the problems are reported (and refused with --strict)."""
    try:
        items, problems = collect_items(args.inputs, args.data_root, args.ids)
    except DuplicateIds as err:
        raise _Refused(err) from None
    for line in problems:
        print(f"skipped {line}", file=sys.stderr)
    if args.strict and problems:
        raise _Refused(f"{len(problems)} bad input(s) (--strict)")
    if not items:
        raise _Refused("nothing to score")
    return items, problems


def _checkpoint_and_record(args, items, choice):
    """(the local checkpoint file --ckpt names, the run record of this run, adf.run_record)."""
    from adf.checkpoints import CheckpointError
    from adf.checkpoints.files import check_checkpoint_path
    from adf.checkpoints.hub import file_sha256, resolve_checkpoint
    from adf.run_record import make_record

    try:
        ckpt_file = resolve_checkpoint(args.ckpt)
    except CheckpointError as err:
        raise _Refused(err) from None
    clashes = output_clashes(args, items, ckpt_file)
    if clashes:
        raise _Refused("; ".join(clashes) + "; choose another output")
    try:
        check_checkpoint_path(ckpt_file)  # before hashing: a FIFO would block
        record = make_record(file_sha256(ckpt_file), {**score_options(args, choice.precision), "ids": args.ids})
    except CheckpointError as err:
        raise _Refused(err) from None
    except OSError as err:
        raise _Refused(f"cannot read checkpoint {args.ckpt}: {err.strerror or err}") from None
    return ckpt_file, record


def _open_outputs(args, items, record):
    from adf.score_outputs import ScoreOutputs

    try:
        outputs = ScoreOutputs(args.output, items, record, segments=args.segments,
                               embeddings=getattr(args, "embeddings", None), overwrite=args.overwrite)
    except (ValueError, OSError) as err:
        helps = getattr(err, "overwrite_helps", not isinstance(err, OSError))
        raise _Refused(f"{err}" + (" (use --overwrite to start afresh, or another output)" if helps else "")) \
            from None
    if outputs.segments is not None:
        missing = outputs.segments_missing()
        if missing:
            print(f"note: {missing} input(s) scored earlier have no rows in {args.segments}; "
                  "--overwrite rescores them", file=sys.stderr)
    return outputs


def _load(args, ckpt_file, device, choice, outputs):
    """The detector of `ckpt_file`, checked against the options; closes `outputs` when refused."""
    from adf.audio import TARGET_SR
    from adf.checkpoints import CheckpointError
    from adf.checkpoints.released import released_model_name
    from adf.inference import load_detector, receptive_field

    try:
        model, _ = load_detector(ckpt_file, args.model, device, choice.precision, args.compile, args.input,
                                 name_hint=released_model_name(args.ckpt), engine=args.engine)
    except (CheckpointError, KeyError, OSError, ValueError) as err:
        outputs.close()
        raise _Refused(err if isinstance(err, (CheckpointError, ValueError)) else
                       f"cannot load checkpoint {args.ckpt}: {err}") from None
    if args.window is not None and args.window * TARGET_SR < receptive_field(model):
        outputs.close()
        raise _Refused(f"--window {args.window:g} s is shorter than the model's receptive field "
                       f"({receptive_field(model) / TARGET_SR:g} s)")
    return model


def _score(args, model, todo, outputs, device, precision):
    """Score `todo` into `outputs`; the counts (scored, skipped, nonfinite, seconds of
    audio, stopped by --strict), or None when interrupted (Ctrl-C)."""
    from adf.inference import NONFINITE, score_items
    from adf.progress import progress

    counts = dict(scored=0, skipped=0, nonfinite=0, seconds=0.0, stopped=False)
    limits = AudioLimits(args.min_rate, args.max_rate, args.max_seconds)
    bar = progress("detect", "input", args.progress_every)
    try:
        for score in score_items(model, todo, batch_size=args.batch_size, device=device,
                                 precision=precision, workers=args.workers, window=args.window,
                                 hop=args.hop, aggregate=args.aggregate, progress=bar, limits=limits,
                                 embeddings=outputs.store is not None, long_input_seconds=LONG_INPUT_SECONDS,
                                 notice=lambda text: bar.write(f"warning: {text}", file=sys.stderr)):
            if not score.ok:
                counts["skipped"] += 1
                counts["nonfinite"] += score.error == NONFINITE
                bar.write(f"skipped {score.item.path} (id {score.item.id}): {score.error}", file=sys.stderr)
                if args.strict:
                    counts["stopped"] = True
                    break
                continue
            counts["scored"] += 1
            counts["seconds"] += score.seconds
            outputs.add(score, args.batch_size)
    except KeyboardInterrupt:
        outputs.flush()
        bar.close()
        outputs.close()
        print(f"interrupted: {outputs.kept} row(s) kept in {outputs.out.partial}; "
              "run the same command again to resume", file=sys.stderr)
        return None
    outputs.flush()
    bar.close()
    return counts
