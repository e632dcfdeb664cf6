"""The Python API: a detector loaded once, scoring files and in-memory audio.

    from adf import Detector

    detector = Detector.from_pretrained("nii-yamagishilab/mms-300m-anti-deepfake")
    records = detector.score(["clip.wav", "other.flac"])           # one dict per input, in order
    table = detector.score(["clip.wav"], as_dataframe=True)        # the same as a pandas DataFrame
    windows = detector.segments("long.wav", window=4.0, hop=2.0)   # per-window scores of one input

Scoring goes through adf.inference.score_items, the engine of `adf detect`:
the same reading, mono mix, 16 kHz resampling, input policy
(adf.input_policy), batching and aggregation of windows, hence the same
numbers as `adf detect` at the same precision and batch size. Arrays (numpy
or torch, [samples] or [samples, channels] as soundfile reads them, at
`sample_rate`) are scored exactly as the file they were read from.

A record is a dict: `id` (a file's name without extension, as `adf detect`
names it, or an array's position), `path` (None for arrays), `logit_fake`,
`logit_real`, `prob_real` (softmax probability of real), `seconds` (audio
scored) and `error` (None, or why the input could not be scored; its
numbers are then None); with `window`, also `windows` (the records of
`segments`). Higher logit_real - logit_fake = more likely real.
"""
from __future__ import annotations

import os

RECORD_FIELDS = ("id", "path", "logit_fake", "logit_real", "prob_real", "seconds", "error")
WINDOW_FIELDS = ("start", "end", "logit_fake", "logit_real", "prob_real")
MODEL_RATE = 16000  # arrays without a sample rate are taken to be at the models' rate


class Detector:
    """A loaded detector: `model` (eval mode) on `device`, run in `precision`
    (fp32, bf16, fp16 or int8); `checkpoint` is the file it came from, `source`
    what it was asked for by (a path, folder or Hub name)."""

    def __init__(self, model, device="cpu", precision="fp32", checkpoint=None, source=None):
        self.model, self.device, self.precision, self.checkpoint = model, str(device), precision, checkpoint
        self.source = source or checkpoint  # what the user named: a path, folder or Hub name

    @classmethod
    def from_pretrained(cls, name_or_path, device=None, precision="auto", model_name=None, input_policy=None,
                        compile=False, engine="torch"):
        """Load a checkpoint file, an `adf export` folder or a Hub model `ORG/NAME[@REVISION]`
        (adf.checkpoints.hub). `device` defaults to cuda when available, else cpu;
        `precision` "auto" resolves as in `adf detect` (adf.precision.resolve);
        `model_name` and `input_policy` override what the checkpoint records,
        `compile` compiles the transformer layers (`adf detect --compile`); `engine`
        "onnxruntime" runs fp32 in ONNX Runtime on the CPU (`adf detect --engine`)."""
        from adf.checkpoints.hub import resolve_checkpoint
        from adf.checkpoints.released import released_model_name
        from adf.detect import pick_device
        from adf.inference import load_detector

        device = pick_device(device, engine)
        path = resolve_checkpoint(name_or_path)
        model, choice = load_detector(path, model_name, device, precision, compile, input_policy,
                                      name_hint=released_model_name(name_or_path), engine=engine)
        return cls(model, device, choice.precision, checkpoint=path, source=os.fspath(name_or_path))

    def __repr__(self):
        return f"Detector({self.model.name!r}, device={self.device!r}, precision={self.precision!r})"

    def info(self):
        """What the detector is: name, parameters, input policy, precision, device, source,
        checkpoint file and its sha256."""
        from adf.checkpoints.hub import file_sha256
        from adf.input_policy import policy_of

        return {"name": self.model.name, "parameters": sum(p.numel() for p in self.model.parameters()),
                "input_policy": policy_of(self.model).name, "precision": self.precision, "device": self.device,
                "source": self.source, "checkpoint": self.checkpoint,
                "sha256": file_sha256(self.checkpoint) if self.checkpoint else None}

    def score(self, inputs, sample_rate=None, batch_size=8, window=None, hop=None, aggregate="mean", workers=0,
              as_dataframe=False):
        """One record per input (module docstring), in input order.

        `inputs`: a list of paths and/or arrays, or a single one. Arrays are at
        `sample_rate` Hz (default 16000); files say their own rate. `window` /
        `hop` (seconds) score windows, aggregated by `aggregate` (mean or min),
        as `adf detect --window`. `workers` decoding processes (0: in this one).
        `as_dataframe` returns a pandas DataFrame of RECORD_FIELDS instead."""
        from adf.inference import score_items

        items, failed = self._items(inputs, sample_rate)
        scores = {s.item.id: s for s in score_items(
            self.model, [i for i in items if i.id not in failed], batch_size=batch_size, device=self.device,
            precision=self.precision, workers=workers, window=window, hop=hop, aggregate=aggregate)}
        records = [_record(item, scores.get(item.id), failed.get(item.id), window is not None) for item in items]
        if as_dataframe:
            import pandas as pd

            return pd.DataFrame([{k: r[k] for k in RECORD_FIELDS} for r in records], columns=RECORD_FIELDS)
        return records

    def score_waveforms(self, waveforms, batch_size=8, window=None, hop=None, aggregate="mean"):
        """Records of decoded mono 16 kHz waveforms (1-D float arrays), batched together:
        for callers that read audio themselves (a service)."""
        return self.score(list(waveforms), sample_rate=MODEL_RATE, batch_size=batch_size, window=window,
                          hop=hop, aggregate=aggregate)

    def segments(self, audio, window=4.0, hop=None, sample_rate=None, batch_size=8, as_dataframe=False):
        """Window records (start, end in seconds, logits, prob_real) of one path or array,
        each window scored on its own (`adf detect --window --segments`), `batch_size`
        windows at a time; raises adf.audio.AudioError when it cannot be scored."""
        from adf.audio import AudioError

        (record,) = self.score([audio], sample_rate=sample_rate, batch_size=batch_size, window=window, hop=hop)
        if record["error"] is not None:
            raise AudioError(record["path"] or "the array", record["error"])
        if as_dataframe:
            import pandas as pd

            return pd.DataFrame(record["windows"], columns=WINDOW_FIELDS)
        return record["windows"]

    @staticmethod
    def _items(inputs, sample_rate):
        """(Items with ids "0", "1", ... in input order, {id: problem} of arrays that are not audio)."""
        from adf.array_audio import ArrayAudio
        from adf.audio import AudioError
        from adf.inference import Item

        if isinstance(inputs, (str, os.PathLike)) or not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        items, failed = [], {}
        for n, given in enumerate(inputs):
            key = str(n)
            if isinstance(given, (str, os.PathLike)):
                items.append(Item(key, os.fspath(given)))
                continue
            name = f"array {n}"
            try:
                audio = ArrayAudio.from_array(given, MODEL_RATE if sample_rate is None else sample_rate, name)
            except AudioError as err:  # reported in its record; the others are scored
                failed[key], audio = err.problem, None
            items.append(Item(key, name, audio=audio))
        return items, failed


def _record(item, score, problem, windowed):
    """The record of `item`: its Score, or `problem` when it never reached the engine."""
    from adf.detect import file_id

    is_array = item.audio is not None or problem is not None  # only arrays fail before the engine
    record = {"id": item.id if is_array else file_id(item.path), "path": None if is_array else item.path,
              "logit_fake": None, "logit_real": None, "prob_real": None, "seconds": None,
              "error": problem if score is None else score.error}
    if windowed:
        record["windows"] = []
    if score is not None and score.ok:
        record.update(logit_fake=score.logit_fake, logit_real=score.logit_real, prob_real=score.prob_real,
                      seconds=score.seconds)
        if windowed:
            record["windows"] = [{"start": w.start, "end": w.end, "logit_fake": w.logit_fake,
                                  "logit_real": w.logit_real, "prob_real": w.prob_real} for w in score.windows]
    return record
