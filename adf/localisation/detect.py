"""`adf detect --resolution R`: segment scores and the fake regions of every input.

    adf detect --ckpt model.safetensors --resolution 0.16 -o utt.csv --segments seg.csv --rttm fake.rttm clips/

For each input the model's frame logits (one per 20 ms backbone frame; the mean
back-end's linear head on every frame, adf.models.backends) become

* a row of `-o`: the utterance logits, i.e. the mean of the frame logits (the
  same numbers as plain `adf detect`);
* rows of `--segments` (default `<OUT stem>.segments.csv`): `id,start,end,score`,
  one per segment of R seconds (adf.localisation.scores: the lowest frame score
  of the segment; `--segment-aggregate mean` averages), score = logit_real -
  logit_fake, higher = more likely real;
* lines of `--rttm` (default `<OUT stem>.rttm`): the runs of segments scoring
  below `--threshold` (default 0: more fake than real), as RTTM `fake` regions.

The input is the whole utterance, layer-normed (the AntiDeepfake input policy);
a model with another policy or a back-end without frame logits is refused.
Unreadable inputs are reported and skipped. Unlike the utterance mode this one
does not resume: outputs are written (atomically) when every input is scored.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from adf.localisation.scores import AGGREGATES, fake_regions, rttm_lines, segment_scores


def add_arguments(parser):
    """The localisation options of `adf detect` (adf.detect.add_arguments calls this)."""
    parser.add_argument("--resolution", type=float, default=None, metavar="SECONDS",
                        help="localise: score segments of this many seconds (e.g. 0.16) from the model's "
                             "20 ms frame logits; writes --segments and --rttm (adf.localisation.detect)")
    parser.add_argument("--rttm", default=None,
                        help="with --resolution: RTTM of the fake regions (default: OUT with .rttm)")
    parser.add_argument("--threshold", type=float, default=0.0,
                        help="with --resolution: a segment is fake when its score is below this (default 0)")
    parser.add_argument("--segment-aggregate", choices=AGGREGATES, default="min",
                        help="with --resolution: a segment's score from its frames (default: the lowest)")


def frame_logits(model, path, start=0, stop=None, device="cpu", precision="fp32"):
    """Per-frame [fake, real] logits [F, 2] (float64) of one file (or native-rate sample
    range); the model input is the whole utterance, layer-normed."""
    import torch

    from adf.audio import load_for_model
    from adf.inference import autocast_context

    wav = load_for_model(path, start, stop)
    with torch.inference_mode(), autocast_context(device, precision):
        frames, _ = model(wav[None].to(device), None, return_frames=True)
    return frames[0].float().cpu().numpy().astype(np.float64)


def frame_scores(model, path, start=0, stop=None, device="cpu", precision="fp32"):
    """Per-frame scores logit_real - logit_fake of one file (see `frame_logits`)."""
    logits = frame_logits(model, path, start, stop, device, precision)
    return logits[:, 1] - logits[:, 0]


def _side_output(output, suffix):
    return os.path.splitext(output)[0] + suffix


def run(args):
    """The `adf detect --resolution` path; returns the exit status."""
    import pandas as pd

    from adf.audio import AudioError
    from adf.checkpoints import CheckpointError
    from adf.data.manifest import write_csv_atomic
    from adf.checkpoints.hub import resolve_checkpoint
    from adf.detect import DuplicateIds, collect_items, pick_device
    from adf.inference import load_detector
    from adf.input_policy import policy_of
    from adf.precision import resolve

    def fail(message):
        print(f"adf detect: error: {message}", file=sys.stderr)
        return 2

    if not args.resolution > 0:
        return fail(f"--resolution must be > 0 seconds (got {args.resolution})")
    if args.window is not None:
        return fail("--resolution scores whole utterances; it does not combine with --window")
    if getattr(args, "engine", "torch") != "torch":
        return fail("--resolution needs the frame logits of the torch engine; drop --engine")
    segments_path = args.segments or _side_output(args.output, ".segments.csv")
    rttm_path = args.rttm or _side_output(args.output, ".rttm")
    try:
        device = pick_device(args.device)
        choice = resolve(args.precision, device)
        items, problems = collect_items(args.inputs, args.data_root, args.ids)
    except (ValueError, DuplicateIds) as err:
        return fail(err)
    for line in problems:
        print(f"skipped {line}", file=sys.stderr)
    if not items:
        return fail("nothing to score")
    try:
        model, _ = load_detector(resolve_checkpoint(args.ckpt), args.model, device, choice.precision, False,
                                 args.input)
    except (CheckpointError, KeyError, OSError, ValueError) as err:
        return fail(err)
    if policy_of(model).fixed or not hasattr(getattr(model, "head", None), "frame_logits"):
        return fail(f"--resolution needs a whole-utterance model with frame logits (the mean back-end); "
                    f"{args.ckpt} is {getattr(model, 'name', '?')} with input policy {policy_of(model).name}")
    utt_rows, seg_rows, rttm, skipped = [], [], [], len(problems)
    for item in items:
        try:
            logits = frame_logits(model, item.path, item.start, item.stop, device, choice.precision)
            duration = _duration(item)
        except AudioError as err:
            print(f"skipped {item.path} (id {item.id}): {err}", file=sys.stderr)
            skipped += 1
            continue
        scores = logits[:, 1] - logits[:, 0]
        if scores.size == 0 or not np.isfinite(scores).all():
            why = "shorter than the model's receptive field" if scores.size == 0 else "non-finite frame scores"
            print(f"skipped {item.path} (id {item.id}): {why}", file=sys.stderr)
            skipped += 1
            continue
        seg = segment_scores(scores, duration, args.resolution, args.segment_aggregate)
        # utterance logits = mean of the frame logits: the model's own (linear head)
        fake, real = (float(v) for v in logits.mean(axis=0))
        row = {"id": item.id, "path": item.path, "logit_fake": fake, "logit_real": real,
               "prob_real": float(1 / (1 + np.exp(fake - real)))}
        if item.label is not None:
            row["label"] = item.label
        utt_rows.append(row)
        for k, s in enumerate(seg):
            seg_rows.append({"id": item.id, "start": round(k * args.resolution, 6),
                             "end": round(min((k + 1) * args.resolution, duration), 6), "score": float(s)})
        rttm += rttm_lines(item.id, fake_regions(seg, args.resolution, duration, args.threshold))
    write_csv_atomic(pd.DataFrame(seg_rows, columns=["id", "start", "end", "score"]), segments_path)
    from adf.atomic import atomic_open

    with atomic_open(rttm_path) as fh:
        fh.write("".join(line + "\n" for line in rttm))
    write_csv_atomic(pd.DataFrame(utt_rows), args.output)
    print(f"adf detect: localised {len(utt_rows)} input(s) at {args.resolution:g} s, skipped {skipped} "
          f"-> {args.output}, {segments_path} ({len(seg_rows)} segments), {rttm_path} "
          f"({len(rttm)} fake regions below {args.threshold:g})")
    return 0 if utt_rows else fail("nothing could be scored")


def _duration(item):
    """Seconds of the input, from the header (so the last segment ends with the audio)."""
    from adf.audio_file import audio_header

    info = audio_header(item.path)
    stop = info.frames if item.stop is None else min(item.stop, info.frames)
    return (stop - item.start) / info.samplerate
