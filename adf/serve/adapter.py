"""The service's one door to the model: load a checkpoint, score a batch of waveforms.

Everything else in adf.serve talks to the model only through `ModelAdapter`, so
pointing the service at another scoring engine changes this class alone. The
forward pass is done here rather than by `Detector.score_waveforms` because the
batching queue has already formed the batch: it runs as one padded forward pass
(the batch sizes recorded are the model's), not re-planned into length buckets.

Scores equal `adf detect`'s: the model is loaded by adf.Detector (as `adf
detect` loads it: adf.inference.load_detector), each waveform gets the model's input policy (adf.input_policy), and a batch is
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
    def load(cls, ckpt, device=None, precision="auto", input_policy=None, model_name=None, engine="torch"):
        """Load `ckpt` as `adf detect --ckpt` does (a file, an `adf export` folder or a
        Hub model ORG/NAME[@REVISION]) through the Python API (adf.Detector); `engine`
        as `adf detect --engine`."""
        from adf.detector import Detector

        detector = Detector.from_pretrained(ckpt, device=device, precision=precision, model_name=model_name,
                                            input_policy=input_policy, engine=engine)
        info = detector.info()
        extra = {"source": info["source"], "checkpoint": os.path.basename(info["checkpoint"]),
                 "checkpoint_sha256": info["sha256"], "engine": engine}
        return cls(detector.model, detector.precision, detector.device, info=extra)

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
