"""The fixed sinc band-pass filterbank of RawNet2 and AASIST (their first layer).

`out_channels` band-pass filters whose band edges are equally spaced on the
mel scale between the lowest and highest frequency of a 512-point FFT grid at
16 kHz, each an ideal band-pass (difference of two sinc low-passes) times a
Hamming window, `kernel_size` taps (made odd). Nothing is learnt: the
published code computes the filters as plain tensors, not parameters, so
they are not part of a checkpoint and are recomputed here on every call
(microseconds; a buffer would be lost when a model is built on the meta
device).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _to_mel(hz):
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def _to_hz(mel):
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


class SincFilterbank(nn.Module):
    """`forward(x [B, 1, T]) -> [B, out_channels, T - kernel_size + 1]` (no padding, stride 1).

    `frequency_mask` (training only): zero a random band of 0-19 consecutive
    filters per call, AASIST's optional "Freq_aug".
    """

    def __init__(self, out_channels, kernel_size, sample_rate=16000, frequency_mask=False):
        super().__init__()
        self.out_channels = out_channels
        self.kernel_size = kernel_size + 1 - kernel_size % 2
        self.sample_rate = sample_rate
        self.frequency_mask = frequency_mask
        nyquist = sample_rate // 2
        top = _to_mel(nyquist)  # the FFT grid spans 0 .. nyquist; mel(0) = 0
        self.edges = [_to_hz(top * i / out_channels) for i in range(out_channels + 1)]

    def filters(self, device=None):
        """The [out_channels, 1, kernel_size] filter taps (float32)."""
        half = (self.kernel_size - 1) / 2
        n = torch.arange(-half, half + 1, dtype=torch.float64)
        edges = torch.tensor(self.edges, dtype=torch.float64)
        cutoff = 2.0 * edges / self.sample_rate  # normalised: 1 = Nyquist
        lowpass = cutoff[:, None] * torch.sinc(cutoff[:, None] * n[None, :])
        window = torch.hamming_window(self.kernel_size, periodic=False, dtype=torch.float64)
        taps = (lowpass[1:] - lowpass[:-1]) * window
        return taps.to(device=device, dtype=torch.float32).unsqueeze(1)

    def forward(self, x):
        taps = self.filters(x.device).to(x.dtype)
        if self.frequency_mask and self.training:
            width = int(torch.randint(0, 20, (1,)))
            first = int(torch.randint(0, self.out_channels - width + 1, (1,)))
            taps = taps.clone()
            taps[first : first + width] = 0
        return F.conv1d(x, taps)

    def extra_repr(self):
        return f"out_channels={self.out_channels}, kernel_size={self.kernel_size}, sample_rate={self.sample_rate}"
