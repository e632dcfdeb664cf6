"""The service's one door to the model: load a checkpoint, score a batch of waveforms.

Everything else in adf.serve talks to the model only through `ModelAdapter`, so
pointing the service at another scoring engine (e.g. a Python-API detector with
a `score_waveforms` method) changes this class alone.

Scores equal `adf detect`'s: the model comes from adf.inference.load_detector,
each waveform gets the model's input policy (adf.input_policy), and a batch is
zero-padded with its lengths passed on, which the model masks, exactly as
adf.inference.score_items feeds it.
"""
from __future__ import annotations

import os
import threading
from contextlib import nullcontext

import torch

from adf.audio import TARGET_SR


class ModelAdapter:
    """A loaded detector. `score_waveforms(list of 16 kHz mono 1-d tensors)` ->
    [(logit_fake, logit_real), ...]. `batch_sizes` records the size of every
    batch scored (the service's metrics, and the tests' proof of batching)."""

    def __init__(self, model, precision="fp32", device="cpu", policy=None, info=None):
        from adf.inference import autocast_context, receptive_field
        from adf.input_policy import policy_of
        from adf.precision import PRECISIONS

        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.precision = precision
        self.policy = policy or policy_of(model)
        self._amp = autocast_context(self.device, precision)
        if model.backbone_dtype == PRECISIONS.get(precision, torch.float32):
            self._amp = nullcontext()  # weights already in that precision: no autocast (as score_items)
        # fewest 16 kHz samples a clip may have: fixed-input policies tile shorter clips
        self.min_samples = 1 if self.policy.fixed else receptive_field(model)
        self.batch_sizes = []
        self._lock = threading.Lock()  # one forward pass at a time, whoever calls
        self.info = {"name": model.name, "parameters": sum(p.numel() for p in model.parameters()),
                     "input_policy": self.policy.name, "sample_rate": TARGET_SR,
                     "min_seconds": self.min_samples / TARGET_SR, "precision": precision,
                     "device": str(self.device), **(info or {})}

    @classmethod
    def load(cls, ckpt, device="cpu", precision="auto", input_policy=None, model_name=None):
        """Load `ckpt` (any checkpoint `adf detect` reads) as `adf detect` does."""
        from adf.inference import load_detector
        from adf.input_policy import policy_of
        from adf.run_record import file_sha256

        model, choice = load_detector(ckpt, model_name=model_name, device=device, precision=precision,
                                      input_policy=input_policy)
        info = {"checkpoint": os.path.basename(ckpt), "checkpoint_sha256": file_sha256(ckpt)}
        return cls(model, choice.precision, device, policy_of(model), info)

    def score_waveforms(self, waveforms):
        """[(logit_fake, logit_real)] of 16 kHz mono waveforms (1-d tensors), one
        padded batch; raises what the model raises (the caller retries alone)."""
        inputs = [self.policy.for_scoring(torch.as_tensor(w, dtype=torch.float32)) for w in waveforms]
        lengths = torch.tensor([w.shape[0] for w in inputs])
        batch = torch.nn.utils.rnn.pad_sequence(inputs, batch_first=True)
        with self._lock, torch.inference_mode(), self._amp:
            self.batch_sizes.append(len(inputs))
            logits = self.model(batch.to(self.device), lengths.to(self.device))
        return [tuple(row) for row in logits.float().cpu().tolist()]
