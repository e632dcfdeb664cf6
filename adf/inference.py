"""The batched scoring engine: audio items in, [fake, real] logits out.

This is the one implementation of test-time scoring in adf; `adf detect`, the
recipes' inference stages and the Python API (adf.detector) call `score_items`:

    items, problems = manifest_items("test.csv", data_root="/data")
    write_score_csv(score_items(model, items, batch_size=8, device="cuda"), "scores/test.csv")

`write_score_csv` and the score-file format live in adf.scorefile.

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
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from adf.audio import TARGET_SR, AudioError, AudioLimits, load_16k
from adf.audio_file import audio_header
from adf.input_policy import get_policy, policy_of
from adf.precision import INFERENCE_CHOICES, PRECISIONS
from adf.scorefile import prob_real

NONFINITE = "the model gave NaN or infinite logits"
AGGREGATES = ("mean", "min")


@dataclass(frozen=True)
class Item:
    """One thing to score: a file, or the sample range [start, stop) of it at its
    native rate (stop None = to the end). `label` is 1 = real, 0 = fake, or None.
    `audio` (adf.array_audio.ArrayAudio) is audio in memory scored in place of
    the file; `path` then only names it."""

    id: str
    path: str
    start: int = 0
    stop: int | None = None
    label: int | None = None
    audio: object = field(default=None, compare=False, repr=False)


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

    @property
    def prob_real(self):
        """Softmax probability of the `real` class."""
        return prob_real(self.logit_fake, self.logit_real)


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
        return prob_real(self.logit_fake, self.logit_real)


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
    if item.audio is not None:
        item.audio.check()
        frames, rate = item.audio.frames, item.audio.rate
    else:
        info = audio_header(path)
        frames, rate = info.frames, int(info.samplerate)
    (limits or AudioLimits()).check(path, rate, 0)
    stop = frames if item.stop is None else item.stop
    if not 0 <= item.start < stop <= frames:
        raise AudioError(path, f"segment [{item.start}, {item.stop}) is outside the file's "
                               f"{frames} samples")
    return item.start, stop, rate


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
        self.sources = [(item.path, item.audio) for item in items]
        self.policy = policy

    def __len__(self):
        return len(self.pieces)

    def __getitem__(self, i):
        piece = self.pieces[i]
        path, audio = self.sources[piece.index]
        try:
            wav = (load_16k(path, piece.start, piece.stop) if audio is None
                   else audio.read_16k(piece.start, piece.stop))
            return i, self.policy.for_scoring(wav), None
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


def load_detector(ckpt, model_name=None, device="cpu", precision="auto", compile_layers=False, input_policy=None,
                  name_hint=None, engine="torch"):
    """(model in eval mode, precision Choice): `ckpt` loaded on `device` in the
    precision `precision` resolves to (adf.precision.resolve: "auto" picks bf16
    only where the device computes it natively). bf16/fp16 weights are read
    straight into that dtype (no fp32 copy; norms and head stay fp32); int8
    loads fp32 and quantizes the transformer layers' linear maps. `input_policy`
    (a name, adf.input_policy) overrides the one the checkpoint records;
    `name_hint`: see adf.checkpoints.load_model. `engine` "onnxruntime" runs the
    model in ONNX Runtime (fp32 on the CPU; adf.onnx_engine)."""
    from adf.checkpoints import load_model
    from adf.precision import quantize_int8

    choice = resolve_engine(engine, precision, device, compile_layers)
    dtype = PRECISIONS[choice.precision] if choice.precision in PRECISIONS else None
    model = load_model(ckpt, model_name=model_name, device=device, dtype=dtype, input_policy=input_policy,
                       name_hint=name_hint)
    check_input_policy(model, policy_of(model))
    if choice.precision == "int8":
        quantize_int8(model)
    if compile_layers:
        model.compile_layers()
    if engine == "onnxruntime":
        from adf.onnx_engine import onnxruntime_model

        model = onnxruntime_model(model, ckpt)
    return model, choice


def resolve_engine(engine, precision, device, compile_layers=False):
    """The precision Choice (adf.precision.resolve) for running on `engine` ("torch" or
    "onnxruntime"); ValueError for combinations that cannot run. ONNX Runtime runs the
    fp32 graph on the CPU, so there `auto` means fp32."""
    from adf.precision import Choice, resolve

    from adf.onnx_engine import ENGINES

    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if engine == "torch":
        return resolve(precision, device)
    if torch.device(device).type != "cpu":
        raise ValueError(f"the onnxruntime engine runs on the CPU; use --device cpu (not {device})")
    if precision not in ("auto", "fp32"):
        raise ValueError(f"the onnxruntime engine runs fp32; --precision {precision} needs --engine torch")
    if compile_layers:
        raise ValueError("--compile applies to the torch engine only")
    return Choice("fp32", "onnxruntime engine" + (": auto means fp32 there" if precision == "auto" else ""))


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
    hop = check_window_options(batch_size, aggregate, window, hop)
    amp = _autocast_for(model, device, precision)
    policy, plan, bad = plan_pieces(model, items, window, hop, limits, workers, input_policy)
    yield from bad  # 1. headers -> pieces; bad items at once
    if notice is not None and long_input_seconds is not None:
        _notice_long_inputs(plan, long_input_seconds, notice)
    if progress is not None:
        progress.total = len(plan.pieces)
        progress.refresh()
    if not plan.pieces:
        return
    # 2. Longest first, batches of similar lengths, decoded by DataLoader workers.
    batches = plan_batches([policy.scored_length(piece.length_16k) for piece in plan.pieces], batch_size)
    loader = torch.utils.data.DataLoader(
        _PieceDataset(plan.pieces, items, policy), batch_sampler=batches, collate_fn=_collate,
        num_workers=workers, pin_memory=torch.device(device).type == "cuda",
    )
    # 3. Batch outputs -> finished Scores.
    assembler = _Assembler(plan, window, aggregate, embeddings, progress)
    yield from assembler.scores(_run_batches(model, loader, device, amp))


def plan_pieces(model, items, window=None, hop=None, limits=None, workers=0, input_policy=None):
    """Stage 1 of `score_items`: (input policy, _Plan of the items' model inputs, the Scores
    of the items that cannot be scored). Each item's pieces depend on that item alone
    (adf.shard relies on it). `hop` None = `window`."""
    policy = get_policy(input_policy) if input_policy else policy_of(model)
    check_input_policy(model, policy)
    hop = window if hop is None else hop
    plan = _Plan(items, window, hop, min_16k=1 if policy.fixed else receptive_field(model))
    return policy, plan, list(plan.add(limits or AudioLimits(), workers))


def check_window_options(batch_size, aggregate, window, hop):
    """`hop` as scoring uses it (default: `window`); ValueError for impossible options."""
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
    return hop


def _autocast_for(model, device, precision):
    """The autocast context for running `model` in `precision` (autocast_context), or none
    when the weights already are in that precision (load_model dtype / set_precision)."""
    amp = autocast_context(device, precision)
    if model.backbone_dtype == PRECISIONS.get(precision, torch.float32):
        return nullcontext()
    return amp


class _Plan:
    """The model inputs (pieces) of `items`: one per item, or one per window.
    `spans[index]` is how many pieces item `index` has (items that failed have none)."""

    def __init__(self, items, window, hop, min_16k):
        self.items, self.window, self.hop, self.min_16k = items, window, hop, min_16k
        self.pieces, self.spans = [], {}

    def add(self, limits, workers):
        """Read every item's header (in a thread pool) and plan its pieces; yields
        the Score of each item that cannot be scored."""
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            probed = list(pool.map(lambda item: _probe_or_error(item, limits), self.items))
        for index, (item, result) in enumerate(zip(self.items, probed)):
            if isinstance(result, str):
                yield Score(item, error=result)
                continue
            problem = self._add_item(index, *result, limits)
            if problem is not None:
                yield Score(item, error=problem)

    def _add_item(self, index, begin, end, sr, limits):
        """Plan item `index`'s pieces over native samples [begin, end); the problem, or None."""
        if (end - begin) * TARGET_SR / sr < self.min_16k:
            return (f"too short: {(end - begin) / sr:.4f} s; the model needs at "
                    f"least {self.min_16k / TARGET_SR:.3f} s")
        windows = ([(begin, end)] if self.window is None
                   else plan_windows(begin, end, sr, self.window, self.hop, self.min_16k))
        try:
            for a, b in windows:
                limits.check(self.items[index].path, sr, b - a)
        except AudioError as err:
            return err.problem
        self.spans[index] = len(windows)
        self.pieces.extend(_Piece(index, a, b, sr) for a, b in windows)
        return None


def _notice_long_inputs(plan, seconds, notice):
    """Tell `notice` once about pieces longer than `seconds` (their cost grows with the square)."""
    long = [p for p in plan.pieces if p.length_16k > seconds * TARGET_SR]
    if long:
        worst = max(long, key=lambda p: p.length_16k)
        notice(f"{len(long)} input(s) longer than {seconds:g} s (longest "
               f"{worst.length_16k / TARGET_SR:.0f} s, {plan.items[worst.index].path}): scoring time grows "
               "with the square of an input's length; --window 30 scores long audio in 30 s windows")


@dataclass
class _Failed:
    """Pieces that could not be scored: [(piece index, problem)]; `decoded` when they
    failed in decoding (they count as done for the progress bar)."""

    pieces: list
    decoded: bool


@dataclass
class _Scored:
    """One batch's outputs: piece indices, logits [B, 2], pooled embeddings [B, D]."""

    pieces: list
    logits: torch.Tensor
    embeddings: torch.Tensor


def _run_batches(model, batches, device, amp):
    """Run `model` over `batches` of (piece indices, padded waveforms, lengths,
    [(piece index, decoding problem)]) in eval mode and inference mode under `amp`;
    yields _Failed and _Scored events.

    One batch stays in flight: a batch's outputs are yielded (and read) only
    after the next batch is queued, so on a GPU the host prepares and launches
    batch n+1 while the device still computes batch n (on the CPU this changes
    nothing). The model's training mode is restored afterwards."""
    device = torch.device(device)

    def forward(wavs, lengths):
        with torch.inference_mode(), amp:
            return model(wavs.to(device, non_blocking=True), lengths.to(device, non_blocking=True),
                         return_embedding=True)

    was_training = model.training
    model.to(device).eval()
    in_flight = None
    try:
        for piece_ids, wavs, lengths, errors in batches:
            yield _Failed(errors, decoded=True)
            queued = None
            if piece_ids:
                queued, too_big = _forward_or_split(forward, piece_ids, wavs, lengths)
                if too_big:
                    yield _Failed(too_big, decoded=False)
            if in_flight is not None:
                yield in_flight
            in_flight = queued
        if in_flight is not None:
            yield in_flight
    finally:
        model.train(was_training)


def _forward_or_split(forward, piece_ids, wavs, lengths):
    """(_Scored or None, [(piece index, problem)]): the batch's outputs; when it runs
    out of memory, each input alone, so that only what does not fit fails."""
    try:
        return _Scored(piece_ids, *forward(wavs, lengths)), []
    except Exception as err:  # noqa: BLE001 - out of memory only; others re-raise
        if not _out_of_memory(err):
            raise
    alone, too_big = [], []
    for j, i in enumerate(piece_ids):
        n = int(lengths[j])
        try:
            alone.append((i, *forward(wavs[j:j + 1, :n], lengths[j:j + 1])))
        except Exception as err_alone:  # noqa: BLE001
            if not _out_of_memory(err_alone):
                raise
            too_big.append((i, f"out of memory scoring {n / TARGET_SR:.0f} s at once; score it in windows "
                               "(--window)"))
    if not alone:
        return None, too_big
    return _Scored([a[0] for a in alone], torch.cat([a[1] for a in alone]),
                   torch.cat([a[2] for a in alone])), too_big


class _Assembler:
    """Turns batch events (run_batches) into one Score per item of `plan`, each as
    soon as all its pieces are scored; an item fails with its first failed piece."""

    def __init__(self, plan, window, aggregate, embeddings, progress):
        self.plan, self.window, self.aggregate = plan, window, aggregate
        self.embeddings, self.progress = embeddings, progress
        self.done = {index: [] for index in plan.spans}
        self.failed = set()

    def scores(self, events):
        for event in events:
            if isinstance(event, _Failed):
                for i, problem in event.pieces:
                    yield from self._fail(self.plan.pieces[i].index, problem)
                if event.decoded and self.progress is not None:
                    self.progress.update(len(event.pieces))
            else:
                yield from self._collect(event)

    def _fail(self, index, problem):
        if index not in self.failed:
            self.failed.add(index)
            self.done.pop(index)
            yield Score(self.plan.items[index], error=problem)

    def _collect(self, scored):
        """The Scores finished by one batch's outputs (reading them waits for the device)."""
        logits = scored.logits.float().cpu().tolist()
        emb = scored.embeddings.float().cpu().numpy() if self.embeddings else [None] * len(scored.pieces)
        for i, (fake, real), vec in zip(scored.pieces, logits, emb):
            piece = self.plan.pieces[i]
            if piece.index in self.failed:  # another window of it could not be read
                continue
            if not (math.isfinite(fake) and math.isfinite(real)):  # never a row: an error for the item
                yield from self._fail(piece.index, NONFINITE)
                continue
            windows = self.done[piece.index]
            windows.append(WindowScore(piece.start / piece.sr, piece.stop / piece.sr, fake, real, vec))
            if len(windows) == self.plan.spans[piece.index]:
                yield score_from_windows(self.plan.items[piece.index], self.done.pop(piece.index),
                                         self.window, self.aggregate)
        if self.progress is not None:
            self.progress.update(len(scored.pieces))


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


def score_from_windows(item, windows, window, aggregate):
    """The Score of an item whose model inputs are all scored (`windows`: its
    WindowScores; with `window`, combined by `aggregate` as `adf detect --window`)."""
    windows.sort(key=lambda w: w.start)
    embedding = None
    if windows[0].embedding is not None:
        embedding = sum(w.embedding for w in windows) / len(windows)
    if window is None:
        (only,) = windows
        return Score(item, only.logit_fake, only.logit_real, only.end - only.start, embedding=embedding)
    fake, real = (_mean_logits if aggregate == "mean" else _min_logits)(windows)
    return Score(item, fake, real, windows[-1].end - windows[0].start, windows, embedding=embedding)
