"""The detector interface for raw-waveform systems (RawNet2, AASIST).

SSLClassifier and these classes answer the same calls, so SSLBrain, the
scoring engine, `adf detect` and the checkpoints treat every model alike:
`forward(wav [B, T], lengths [B] or None, return_embedding=False)` -> logits
[B, 2] ordered [fake, real] (or `(logits, embedding)`), plus `name`,
`config`, `input_policy`, `aux_loss`, `backbone_dtype`, `set_precision`,
`compile_layers` and `min_samples`.

Their inputs are the fixed-length windows of their input policy, so batches
are normally unpadded; a padded batch (another policy) is scored one
utterance at a time on its valid samples, because zero padding would change
their pooling and recurrent states.
"""
from __future__ import annotations

import torch
from torch import nn


class WaveformDetector(nn.Module):
    """Base class: subclasses implement `detect(wav [B, T]) -> (logits [B, 2], embedding [B, E])`
    and set `self.name`, `self.config` (a JSON-serialisable dict of their options)
    and `self.min_samples` (the shortest input they accept)."""

    input_policy = "first-64600"
    aux_loss = None
    min_samples = 1
    # names of the top-level modules that form the front-end (the rest is the back-end)
    frontend_modules = ()

    def forward(self, wav, lengths=None, return_embedding=False):
        wav = wav.float()
        if lengths is not None and bool((lengths != wav.shape[1]).any()):
            outs = [self.detect(wav[i : i + 1, :n]) for i, n in enumerate(lengths.tolist())]
            logits, emb = torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])
        else:
            logits, emb = self.detect(wav)
        return (logits, emb) if return_embedding else logits

    def embed(self, wav, lengths=None):
        return self.forward(wav, lengths, return_embedding=True)[1]

    def parameter_split(self):
        """(front-end, back-end) parameter counts."""
        front = sum(p.numel() for n, p in self.named_parameters() if n.split(".")[0] in self.frontend_modules)
        return front, sum(p.numel() for p in self.parameters()) - front

    @property
    def backbone_dtype(self):
        return torch.float32

    def set_precision(self, precision):
        """These models are small and always compute in fp32 (bf16/fp16 scoring
        runs them under autocast); weights read in another dtype go back to fp32."""
        del precision
        return self.float()

    def compile_layers(self, mode=None):
        """Nothing to compile per layer (the SSL models' option); returns self."""
        del mode
        return self
