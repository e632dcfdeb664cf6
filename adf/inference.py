"""The batched scoring engine: audio items in, [fake, real] logits out.

This is the one implementation of test-time scoring in adf; `adf detect` and
the recipes' inference stages both call `score_items`:

    items, problems = manifest_items("test.csv", data_root="/data")
    write_score_csv(score_items(model, items, batch_size=8, device="cuda"), "scores/test.csv")

Score CSV columns: id, path, logit_fake, logit_real, prob_real (+ label, 1 = real).

Pipeline:
1. `probe` reads every item's header (frames, rate) in a thread pool, so
   unreadable or empty files are reported before the model starts and every
   model input's length is known.
2. Each item becomes one model input (the whole utterance, or the Start/Stop
   segment), or with `window` seconds one input per window.
3. Inputs are sorted by length and grouped into batches of up to `batch_size`
   with at most 5 % padding (`plan_batches`), the longest first (an
   out-of-memory shows up at once). Worker processes of a
   torch DataLoader decode, mix to mono, resample to 16 kHz and apply the
   model's input policy (adf.input_policy: for the AntiDeepfake models the
   whole input, layer-normed, exactly the reference's test-time
   preprocessing; for fixed-input systems the first 64,600 samples, tiled)
   while the model runs on the previous batch.
4. Padded batches are scored; SSLClassifier masks the padding, so a batch
   gives the scores of scoring each input alone. One batch stays in flight:
   its outputs are read after the next batch is queued, so a GPU does not
   idle while the host collects results and launches the next batch.

Windows (`window`/`hop` in seconds) are read with soundfile start/stop, so an
hour-long file never sits in memory whole. Each window is resampled and
layer-normed on its own, as if it were a file of its own: its scores equal
those of the same audio cut into a separate file, not those of the same
stretch inside a whole-file forward pass. Windows start every `hop` seconds;
the last one keeps whatever remains (as the reference's test-set segmentation
does) unless that is shorter than the model's receptive field (25 ms).
Utterance scores aggregate the window logits: `mean` averages them, `min`
takes the most fake window (lowest logit_real - logit_fake).
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from adf.audio import TARGET_SR, AudioError, AudioLimits, audio_header, load_16k
from adf.input_policy import get_policy, policy_of
from adf.precision import INFERENCE_CHOICES, PRECISIONS

NONFINITE = "the model gave NaN or infinite logits"
AGGREGATES = ("mean", "min")


def _prob_real(fake, real):
    """softmax([fake, real])[1], in float64."""
    return torch.softmax(torch.tensor([fake, real], dtype=torch.float64), 0)[1].item()


@dataclass(frozen=True)
class Item:
    """One thing to score: a file, or the sample range [start, stop) of it at its
    native rate (stop None = to the end). `label` is 1 = real, 0 = fake, or None."""

    id: str
    path: str
    start: int = 0
    stop: int | None = None
    label: int | None = None


def manifest_items(path, data_root=None):
    """Items of a 12-column manifest (optional Start/Stop segment columns), plus
    its problems (one line each; bad rows are left out). `data_root` replaces $ROOT."""
    from adf.data.manifest import ROOT_PLACEHOLDER, ManifestError, read_manifest

    try:
        df, problems = read_manifest(path, root=data_root, on_error="skip")
    except ManifestError as err:
        return [], [str(err)]
    if data_root is None and df["Path"].str.contains(ROOT_PLACEHOLDER, regex=False).any():
        return [], [f"{path}: paths use {ROOT_PLACEHOLDER}; give the data root"]
    starts = df["Start"] if "Start" in df.columns else [-1] * len(df)
    stops = df["Stop"] if "Stop" in df.columns else [-1] * len(df)
    items = [Item(str(i), p, max(int(a), 0), int(b) if b >= 0 else None, int(label == "real"))
             for i, p, a, b, label in zip(df["ID"], df["Path"], starts, stops, df["Label"])]
    return items, problems


@dataclass
class WindowScore:
    """Logits of one window; `start`/`end` are seconds from the beginning of the file."""

    start: float
    end: float
    logit_fake: float
    logit_real: float
    embedding: object = None  # pooled embedding (numpy) when asked for


@dataclass
class Score:
    """The result for one item: logits, or `error` (a reason) when it was skipped.
    `seconds` is the scored audio's duration; `windows` is empty unless windowed."""

    item: Item
    logit_fake: float | None = None
    logit_real: float | None = None
    seconds: float = 0.0
    windows: list = field(default_factory=list)
    error: str | None = None
    embedding: object = None  # pooled embedding (mean over windows) when asked for

    @property
    def ok(self):
        return self.error is None

    @property
    def prob_real(self):
        """Softmax probability of the `real` class."""
        return _prob_real(self.logit_fake, self.logit_real)


@dataclass(frozen=True)
class _Piece:
    """One model input: native samples [start, stop) of item `index`."""

    index: int
    start: int
    stop: int
    sr: int

    @property
    def length_16k(self):
        return math.ceil((self.stop - self.start) * TARGET_SR / self.sr)


def receptive_field(model):
    """Fewest 16 kHz samples the model accepts: for SSL models those its CNN turns
    into one frame (400 for every paper model), else the model's `min_samples`."""
    if not hasattr(model, "backbone"):
        return model.min_samples
    field_ = 1
    for _, kernel, stride in reversed(model.config["extractor_conv_layer_config"]):
        field_ = (field_ - 1) * stride + kernel
    return field_


def check_input_policy(model, policy):
    """ValueError unless a fixed-input `policy` gives `model` enough samples."""
    if policy.fixed and policy.samples < receptive_field(model):
        raise ValueError(f"input policy {policy.name} gives {policy.samples} samples; the model "
                         f"needs at least {receptive_field(model)}")


def probe(item, limits=None):
    """(first sample, end sample, rate) of `item` from the file header; raises
    AudioError naming the file when it cannot be scored or its rate breaks
    `limits` (an AudioLimits; the length limit is checked per model input)."""
    path = item.path
    info = audio_header(path)
    (limits or AudioLimits()).check(path, int(info.samplerate), 0)
    stop = info.frames if item.stop is None else item.stop
    if not 0 <= item.start < stop <= info.frames:
        raise AudioError(path, f"segment [{item.start}, {item.stop}) is outside the file's "
                               f"{info.frames} samples")
    return item.start, stop, int(info.samplerate)


def plan_windows(begin, end, sr, window, hop, min_16k):
    """Native-rate (start, stop) windows of `window` s every `hop` s over [begin, end).

    One window when the span is no longer than `window`; the last window keeps
    the remainder unless it is shorter than `min_16k` samples at 16 kHz."""
    length, step = round(window * sr), round(hop * sr)
    if end - begin <= length:
        return [(begin, end)]
    count = 1 + math.ceil((end - begin - length) / step)
    spans = [(begin + k * step, min(begin + k * step + length, end)) for k in range(count)]
    if (spans[-1][1] - spans[-1][0]) * TARGET_SR / sr < min_16k:
        spans.pop()
    return spans


class _PieceDataset(torch.utils.data.Dataset):
    """Decodes and preprocesses one piece; errors come back as text, never raised,
    so one bad file cannot stop a DataLoader worker."""

    def __init__(self, pieces, items, policy):
        self.pieces = pieces
        self.paths = [item.path for item in items]
        self.policy = policy

    def __len__(self):
        return len(self.pieces)

    def __getitem__(self, i):
        piece = self.pieces[i]
        try:
            return i, self.policy.for_scoring(load_16k(self.paths[piece.index], piece.start, piece.stop)), None
        except AudioError as err:
            return i, None, err.problem
        except MemoryError:
            return i, None, (f"out of memory decoding {(piece.stop - piece.start) / piece.sr:.0f} s of audio; "
                             "score it in windows (--window)")


def _collate(batch):
    """-> piece indices, zero-padded waveforms [B, T], lengths [B], [(piece index, error)]."""
    good = [(i, wav) for i, wav, err in batch if err is None]
    errors = [(i, err) for i, _, err in batch if err is not None]
    if not good:
        return [], None, None, errors
    wavs = [wav for _, wav in good]
    lengths = torch.tensor([w.shape[0] for w in wavs])
    return [i for i, _ in good], torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True), lengths, errors


def autocast_context(device, precision):
    """Autocast for `precision` on `device` (nullcontext for fp32 and int8, whose
    quantized layers take fp32 input); fp16 needs CUDA, int8 the CPU."""
    if precision not in INFERENCE_CHOICES or precision == "auto":
        raise ValueError(f"unknown precision {precision!r}; choose one of: "
                         f"{', '.join(c for c in INFERENCE_CHOICES if c != 'auto')} (resolve 'auto' first)")
    device = torch.device(device)
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 needs a CUDA device; use --precision bf16 (or fp32) on the CPU")
    if precision == "int8" and device.type != "cpu":
        raise ValueError("int8 (dynamic quantization) runs on the CPU only")
    if precision in ("fp32", "int8"):
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=PRECISIONS[precision])


def load_detector(ckpt, model_name=None, device="cpu", precision="auto", compile_layers=False, input_policy=None):
    """(model in eval mode, precision Choice): `ckpt` loaded on `device` in the
    precision `precision` resolves to (adf.precision.resolve: "auto" picks bf16
    only where the device computes it natively). bf16/fp16 weights are read
    straight into that dtype (no fp32 copy; norms and head stay fp32); int8
    loads fp32 and quantizes the transformer layers' linear maps. `input_policy`
    (a name, adf.input_policy) overrides the one the checkpoint records."""
    from adf.checkpoints import load_model
    from adf.precision import quantize_int8, resolve

    choice = resolve(precision, device)
    dtype = PRECISIONS[choice.precision] if choice.precision in PRECISIONS else None
    model = load_model(ckpt, model_name=model_name, device=device, dtype=dtype, input_policy=input_policy)
    check_input_policy(model, policy_of(model))
    if choice.precision == "int8":
        quantize_int8(model)
    if compile_layers:
        model.compile_layers()
    return model, choice


def _mean_logits(windows):
    return (sum(w.logit_fake for w in windows) / len(windows),
            sum(w.logit_real for w in windows) / len(windows))


def _min_logits(windows):
    worst = min(windows, key=lambda w: w.logit_real - w.logit_fake)
    return worst.logit_fake, worst.logit_real


def score_items(model, items, batch_size=8, device="cpu", precision="fp32", workers=0,
                window=None, hop=None, aggregate="mean", progress=None, embeddings=False, limits=None,
                input_policy=None, long_input_seconds=None, notice=None):
    """Score `items` (a sequence of Item); yields one Score per item as soon as it
    is finished (failed items first, then in batch order, not input order).

    `window`/`hop` (seconds) score windows and aggregate them with `aggregate`
    ("mean" or "min"); `workers` is the number of decoding processes (0 = in
    this process); `progress` is an optional tqdm-like object updated with the
    number of model inputs done. The model is moved to `device` and run in eval
    mode; its training mode is restored afterwards. With `embeddings`, each
    Score also carries the pooled embedding (the analysis mode of the recipes).
    `precision` bf16/fp16 runs autocast over fp32 weights, or, faster, nothing
    when the backbone's weights already are in that precision
    (SSLClassifier.set_precision). `limits` (adf.audio.AudioLimits, default
    its defaults) bounds the sample rate and the length of each model input
    before anything is decoded. A batch that runs out of memory is retried one
    input at a time; an input that does not fit alone fails, the rest go on.
    `input_policy` (a name, adf.input_policy) overrides the model's own
    (`model.input_policy`, what it was trained with).
    `notice(text)` is told once when model inputs are longer than
    `long_input_seconds` (their cost grows with the square of the length).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if aggregate not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}; choose one of: {', '.join(AGGREGATES)}")
    if window is None and hop is not None:
        raise ValueError("hop needs window")
    if window is not None:
        hop = window if hop is None else hop
        if not (window > 0 and hop > 0):
            raise ValueError("window and hop must be > 0 seconds")
    device = torch.device(device)
    amp = autocast_context(device, precision)
    if model.backbone_dtype == PRECISIONS.get(precision, torch.float32):
        amp = nullcontext()  # weights already in that precision (load_model dtype / set_precision): no autocast

    # 1. Headers -> pieces; items that cannot be scored are reported at once.
    policy, pieces, spans, errors = plan_pieces(model, items, window, hop, limits, workers, input_policy)
    for index, reason in errors:
        yield Score(items[index], error=reason)
    if notice is not None and long_input_seconds is not None:
        long = [p for p in pieces if p.length_16k > long_input_seconds * TARGET_SR]
        if long:
            worst = max(long, key=lambda p: p.length_16k)
            notice(f"{len(long)} input(s) longer than {long_input_seconds:g} s (longest "
                   f"{worst.length_16k / TARGET_SR:.0f} s, {items[worst.index].path}): scoring time grows "
                   "with the square of an input's length; --window 30 scores long audio in 30 s windows")
    if progress is not None:
        progress.total = len(pieces)
        progress.refresh()
    if not pieces:
        return

    # 2. Longest first, batches of similar lengths, decoded by DataLoader workers.
    batches = plan_batches([policy.scored_length(piece.length_16k) for piece in pieces], batch_size)
    loader = torch.utils.data.DataLoader(
        _PieceDataset(pieces, items, policy), batch_sampler=batches, collate_fn=_collate,
        num_workers=workers, pin_memory=device.type == "cuda",
    )
    done = {index: [] for index in spans}
    failed = set()

    def collect(piece_ids, logits, emb):
        """The Scores finished by one batch's outputs (reading them waits for the device)."""
        logits = logits.float().cpu().tolist()
        emb = emb.float().cpu().numpy() if embeddings else [None] * len(piece_ids)
        for i, (fake, real), vec in zip(piece_ids, logits, emb):
            piece = pieces[i]
            if piece.index in failed:  # another window of it could not be read
                continue
            if not (math.isfinite(fake) and math.isfinite(real)):  # never a row: an error for the item
                failed.add(piece.index)
                done.pop(piece.index)
                yield Score(items[piece.index], error=NONFINITE)
                continue
            scored = done[piece.index]
            scored.append(WindowScore(piece.start / piece.sr, piece.stop / piece.sr, fake, real, vec))
            if len(scored) == spans[piece.index]:
                yield _finish(items[piece.index], done.pop(piece.index), window, aggregate)
        if progress is not None:
            progress.update(len(piece_ids))

    def forward(wavs, lengths):
        with torch.inference_mode(), amp:
            return model(wavs.to(device, non_blocking=True), lengths.to(device, non_blocking=True),
                         return_embedding=True)

    was_training = model.training
    model.to(device).eval()
    # One batch in flight: a batch's outputs are read only after the next batch
    # is queued, so on a GPU the host prepares and launches batch n+1 while the
    # device still computes batch n (on the CPU this changes nothing).
    in_flight = None
    try:
        for piece_ids, wavs, lengths, errors in loader:
            for i, problem in errors:
                index = pieces[i].index
                if index not in failed:
                    failed.add(index)
                    done.pop(index)
                    yield Score(items[index], error=problem)
            if progress is not None:
                progress.update(len(errors))
            queued = None
            if piece_ids:
                try:
                    queued = (piece_ids, *forward(wavs, lengths))
                except Exception as err:  # noqa: BLE001 - out of memory only; others re-raise
                    if not _out_of_memory(err):
                        raise
                    alone = []
                    for j, i in enumerate(piece_ids):  # one at a time: only what does not fit fails
                        n = int(lengths[j])
                        try:
                            alone.append((i, *forward(wavs[j:j + 1, :n], lengths[j:j + 1])))
                        except Exception as err_alone:  # noqa: BLE001
                            if not _out_of_memory(err_alone):
                                raise
                            index = pieces[i].index
                            if index not in failed:
                                failed.add(index)
                                done.pop(index)
                                yield Score(items[index], error=f"out of memory scoring {n / TARGET_SR:.0f} s "
                                                                "at once; score it in windows (--window)")
                    if alone:
                        queued = ([a[0] for a in alone], torch.cat([a[1] for a in alone]),
                                  torch.cat([a[2] for a in alone]))
            if in_flight is not None:
                yield from collect(*in_flight)
            in_flight = queued
        if in_flight is not None:
            yield from collect(*in_flight)
    finally:
        model.train(was_training)


def plan_pieces(model, items, window=None, hop=None, limits=None, workers=0, input_policy=None):
    """Stage 1 of `score_items`: the item headers, read in `workers` threads, turned
    into model inputs. Returns (input policy, pieces, {item index: piece count},
    [(item index, reason)] of the items that cannot be scored, in item order).
    Each item's pieces depend on that item alone (adf.shard relies on it)."""
    policy = get_policy(input_policy) if input_policy else policy_of(model)
    min_16k = 1 if policy.fixed else receptive_field(model)  # fixed inputs: shorter clips are tiled
    check_input_policy(model, policy)
    limits = limits or AudioLimits()
    hop = window if hop is None else hop
    pieces, spans, errors = [], {}, []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        probed = list(pool.map(lambda item: _probe_or_error(item, limits), items))
    for index, (item, result) in enumerate(zip(items, probed)):
        if isinstance(result, str):
            errors.append((index, result))
            continue
        begin, end, sr = result
        if (end - begin) * TARGET_SR / sr < min_16k:
            errors.append((index, f"too short: {(end - begin) / sr:.4f} s; the model needs at "
                                  f"least {min_16k / TARGET_SR:.3f} s"))
            continue
        windows = [(begin, end)] if window is None else plan_windows(begin, end, sr, window, hop, min_16k)
        try:
            for a, b in windows:
                limits.check(item.path, sr, b - a)
        except AudioError as err:
            errors.append((index, err.problem))
            continue
        spans[index] = len(windows)
        pieces.extend(_Piece(index, a, b, sr) for a, b in windows)
    return policy, pieces, spans, errors


MAX_PADDING = 0.05


def plan_batches(lengths, batch_size, max_padding=MAX_PADDING):
    """Input indices grouped into batches, longest first: at most `batch_size`
    inputs each, and a batch is closed early rather than let its zero padding
    exceed `max_padding` of its samples (padding never changes a score, but it
    costs compute in the encoder)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, current, total = [], [], 0
    for i in order:
        if current:
            padded = (len(current) + 1) * lengths[current[0]]
            if len(current) == batch_size or 1 - (total + lengths[i]) / padded > max_padding:
                batches.append(current)
                current, total = [], 0
        current.append(i)
        total += lengths[i]
    return batches + [current] if current else batches


def _probe_or_error(item, limits=None):
    try:
        return probe(item, limits)
    except AudioError as err:
        return err.problem


def _out_of_memory(err):
    """Whether `err` is running out of host or device memory (then freed for the next try)."""
    oom = isinstance(err, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(err, RuntimeError) and ("can't allocate memory" in str(err) or "out of memory" in str(err)))
    if oom and torch.cuda.is_available():
        torch.cuda.empty_cache()
    return oom


def _finish(item, windows, window, aggregate):
    """The Score of an item whose model inputs are all scored."""
    windows.sort(key=lambda w: w.start)
    embedding = None
    if windows[0].embedding is not None:
        embedding = sum(w.embedding for w in windows) / len(windows)
    if window is None:
        (only,) = windows
        return Score(item, only.logit_fake, only.logit_real, only.end - only.start, embedding=embedding)
    fake, real = (_mean_logits if aggregate == "mean" else _min_logits)(windows)
    return Score(item, fake, real, windows[-1].end - windows[0].start, windows, embedding=embedding)


# ---------------------------------------------------------------------------
# Score files
# ---------------------------------------------------------------------------

SCORE_COLUMNS = ["id", "path", "logit_fake", "logit_real", "prob_real"]
WINDOW_COLUMNS = ["id", "path", "start", "end", "logit_fake", "logit_real", "prob_real"]


def score_row(score):
    """The score-file row of a finished Score (values as text, floats round-trip exact)."""
    row = {"id": score.item.id, "path": score.item.path, "logit_fake": repr(score.logit_fake),
           "logit_real": repr(score.logit_real), "prob_real": repr(score.prob_real)}
    if score.item.label is not None:
        row["label"] = str(score.item.label)
    return row


def window_rows(score):
    """One row per window of a windowed Score (start/end in seconds in the file)."""
    rows = []
    for w in score.windows:
        row = {"id": score.item.id, "path": score.item.path, "start": repr(w.start), "end": repr(w.end),
               "logit_fake": repr(w.logit_fake), "logit_real": repr(w.logit_real),
               "prob_real": repr(_prob_real(w.logit_fake, w.logit_real))}
        if score.item.label is not None:
            row["label"] = str(score.item.label)
        rows.append(row)
    return rows


def read_score_rows(path):
    """Rows (dicts of text) of a score CSV, [] when it does not exist.

    Only newline-terminated lines count, and rows whose logits do not parse are
    dropped, so a side file cut off by a kill yields exactly its complete rows.
    Raises ValueError when the file is not a score CSV."""
    if not os.path.exists(path):
        return []
    import io

    import pandas as pd

    with open(path, encoding="utf-8", newline="") as fh:
        text = fh.read()
    text = text[: text.rfind("\n") + 1]
    if not text:
        return []
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ValueError(f"{path}: not a readable score CSV ({err})") from None
    missing = [c for c in ("id", "path", "logit_fake", "logit_real") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a score CSV (missing column(s): {', '.join(missing)})")
    logits = df[["logit_fake", "logit_real"]].apply(pd.to_numeric, errors="coerce")
    return df[logits.notna().all(axis=1)].to_dict("records")


def write_score_csv(scores, path):
    """Write the rows of the finished Scores to `path` atomically; returns the row count.
    (For one-shot scoring; `adf detect` builds its output with ResumableCSV.)"""
    import pandas as pd

    from adf.data.manifest import write_csv_atomic

    rows = [score_row(s) for s in scores if s.ok]
    columns = SCORE_COLUMNS + (["label"] if any("label" in r for r in rows) else [])
    write_csv_atomic(pd.DataFrame(rows, columns=columns), path)
    return len(rows)


class ResumableCSV:
    """A CSV built row by row that survives kills: rows are appended to
    `<path>.partial` (flushed and fsynced per `append`), and `finalize` writes
    `path` atomically (temp file, then rename) and removes the side file.

    Opening one reads the rows of an earlier run from `path` and `<path>.partial`
    (`keep(row)` filters them; `overwrite` removes them), so a re-run adds only
    what is missing. Rows are keyed by `key(row)`; the last one of a key wins.
    With `record` (adf.run_record.make_record) the earlier rows are used only
    when the earlier run's record is equal, and `known` (the keys of this run's
    inputs) refuses rows of inputs not given now; both raise OutputRefused.
    The side file is never followed when it is a symbolic link, and an
    exclusive lock (`<path>.lock`) keeps a second writer of `path` out until
    `finalize` or `close`.
    """

    def __init__(self, path, columns, key, keep=None, overwrite=False, record=None, known=None):
        import csv

        from adf.atomic import ExclusiveLock, side_path
        from adf.run_record import OutputRefused, check_resumable, record_path, write_record

        self.path, self.partial = os.fspath(path), side_path(path, ".partial")
        self.key = key
        self._lock = ExclusiveLock(self.path)
        try:
            rows = {}
            if overwrite:  # the old rows go now: a kill must not leave them beside the new record
                for old in (self.path, record_path(self.path)):
                    if os.path.lexists(old):
                        os.unlink(old)
            else:
                if os.path.islink(self.partial):
                    raise OutputRefused(f"{self.partial} is a symbolic link; adf never reads or writes "
                                        "its side files through links (remove it)")
                if record is not None:
                    check_resumable(self.path, self.partial, record)
                for source in (self.path, self.partial):
                    for row in read_score_rows(source):
                        if keep is None or keep(row):
                            rows[key(row)] = row
            if known is not None:
                foreign = [row for k, row in rows.items() if k not in known]
                if foreign:
                    raise OutputRefused(
                        f"{self.path} holds rows of {len(foreign)} input(s) not given this time "
                        f"(e.g. {foreign[0].get('path')}); give the same inputs to resume it, or start "
                        "afresh")
            self.previous = list(rows.values())
            extra = [c for row in self.previous for c in row if c not in columns]
            self.columns = list(columns) + list(dict.fromkeys(extra))
            if record is not None:
                write_record(self.path, record)
            self._write(self.partial, self.previous)  # drop a cut-off last line, then append
            fd = os.open(self.partial, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
        except BaseException:
            self._lock.release()
            raise
        self._fh = open(fd, "a", encoding="utf-8", newline="")
        self._writer = csv.DictWriter(self._fh, self.columns, lineterminator="\n", restval="")
        self.new = []

    def _write(self, path, rows):
        import csv

        from adf.atomic import atomic_open

        with atomic_open(path, newline="") as fh:  # csv, not pandas: import time counts in start-up
            writer = csv.DictWriter(fh, self.columns, lineterminator="\n", restval="")
            writer.writeheader()
            writer.writerows(rows)

    def append(self, rows):
        """Add finished rows; they are on disk when this returns."""
        if not rows:
            return
        self._writer.writerows(rows)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.new.extend(rows)

    def close(self):
        """Stop without finalizing: the side file stays for a later run, unless it holds no rows."""
        self._fh.close()
        if not (self.previous or self.new):
            os.unlink(self.partial)
        self._lock.release()

    def rows(self, sort_key=None):
        """Every row (earlier runs' and this one's; the last of a key), as `finalize` writes them."""
        rows = {self.key(row): row for row in self.previous + self.new}
        return sorted(rows.values(), key=sort_key) if sort_key else list(rows.values())

    def finalize(self, sort_key=None):
        """Write every row (earlier runs' and this one's) to `path`, atomically."""
        self._fh.close()
        rows = self.rows(sort_key)
        self._write(self.path, rows)
        os.unlink(self.partial)
        self._lock.release()
        return len(rows)
