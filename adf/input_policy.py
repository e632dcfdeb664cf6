"""Input policies: which stretch of a (mono, 16 kHz) waveform a detector sees, and how it is scaled.

Every detector is scored the way it was trained, so its checkpoint records
its policy (metadata `input_policy`) and `adf detect --input` / the recipes'
`input_policy` only override it on purpose.

* `whole` (the AntiDeepfake models): the whole utterance, layer-normed per
  utterance (zero mean, unit variance). Training crops clips longer than
  13 s to a random 10-13 s window first (adf.audio.random_crop).
* `first-<N>` (the fixed-input systems, e.g. `first-64600`: AASIST, RawNet2
  and the SSL_Anti-spoofing family, 64,600 samples = 4.04 s): the first N
  samples, repeated from the start to fill N when the clip is shorter, no
  normalisation. Training takes a random N-sample window instead (tiled the
  same way when shorter); validation uses the first N samples, as the
  published recipes do.

Long audio can still be scored in windows (`adf detect --window`): each window
is then one utterance for the policy.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from adf.audio import waveform_layer_norm

DEFAULT = "whole"
FIXED_INPUT = "first-64600"
_FIXED = re.compile(r"first-(\d+)")


def tile_to(wav, length, start=0):
    """`length` samples of `wav` [..., T] from `start`, repeating the clip from its
    beginning when it is too short (the published systems' `np.tile` padding)."""
    n = wav.shape[-1]
    if n == 0:
        raise ValueError("cannot tile an empty waveform")
    if start + length > n:
        wav = wav.repeat(*([1] * (wav.dim() - 1)), -(-(start + length) // n))
    return wav[..., start : start + length]


@dataclass(frozen=True)
class InputPolicy:
    """One policy; `samples` is None for the whole utterance."""

    name: str
    samples: int | None
    normalise: bool

    def for_scoring(self, wav):
        """The model input for a 16 kHz mono waveform [T] at test (and validation) time."""
        if self.samples is not None:
            wav = tile_to(wav, self.samples)
        return waveform_layer_norm(wav) if self.normalise else wav

    def for_training(self, wav, generator=None):
        """A training input: a random window of `samples` (uniform start), tiled
        when shorter; the whole policy's crop happens earlier, at the native
        rate (adf.data.pipeline)."""
        if self.samples is not None:
            n = wav.shape[-1]
            start = int(torch.randint(0, n - self.samples + 1, (1,), generator=generator)) if n > self.samples else 0
            wav = tile_to(wav, self.samples, start)
        return waveform_layer_norm(wav) if self.normalise else wav

    def scored_length(self, length_16k):
        """How many samples the model sees for a clip of `length_16k` samples."""
        return length_16k if self.samples is None else self.samples

    @property
    def fixed(self):
        return self.samples is not None


def get_policy(name):
    """The InputPolicy called `name` ("whole" or "first-<N>"); ValueError otherwise."""
    if isinstance(name, InputPolicy):
        return name
    if name == "whole":
        return InputPolicy("whole", None, True)
    match = _FIXED.fullmatch(str(name))
    if match and int(match.group(1)) > 0:
        return InputPolicy(name, int(match.group(1)), False)
    raise ValueError(f"unknown input policy {name!r}; use 'whole' or 'first-N' (e.g. {FIXED_INPUT})")


def policy_of(model):
    """The input policy a model was built or loaded with (default: whole)."""
    return get_policy(getattr(model, "input_policy", None) or DEFAULT)
