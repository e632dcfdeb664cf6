"""Inference path of the CNN feature extractor as GEMMs on time-major features.

torchaudio's `FeatureExtractor` runs seven `nn.Conv1d` layers channel-major
([B, C, T]). On the CPU, oneDNN then spends most of the CNN's time reordering
activations between its blocked layout and the plain one (in bf16 the CNN of
w2v_small took ~60 % of a forward pass, almost all of it in `copy_`), and the
encoder needs the result transposed to [B, T, C] anyway.

Here the same modules (same weights, no copy of the model) are evaluated
time-major, [T, C] per utterance: a convolution with kernel k and stride s is
the sum over j < k of `x[j::s] @ W[:, :, j].T`, k GEMMs on strided views that
BLAS reads in place (row stride s*C), so nothing is reordered or unfolded.
Each utterance runs on its valid samples only, so padding costs the CNN
nothing and group-norm statistics (w2v_small) are those of the utterance
alone, exactly like `SSLClassifier`'s per-utterance reference path.

The first layer (one input channel, kernel 10) is cheap and is computed in
fp32 whatever the weights' dtype, so a bf16 model does not first round the
waveform to 8 bits of mantissa.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_time_major(x, conv):
    """`conv` (an nn.Conv1d, no padding/dilation/groups) applied to x [T, C_in] -> [T_out, C_out]."""
    (k,), (s,) = conv.kernel_size, conv.stride
    n = (x.shape[0] - k) // s + 1
    if n < 1:
        raise ValueError(f"input of {x.shape[0]} steps is shorter than the kernel ({k})")
    w = conv.weight
    span = (n - 1) * s + 1
    out = F.linear(x[0:span:s], w[:, :, 0], conv.bias)
    for j in range(1, k):
        out.addmm_(x[j : j + span : s], w[:, :, j].t())
    return out


def _first_layer(wav, layer, dtype):
    """Layer 0 (1 input channel) in fp32 -> [T_out, C] in `dtype`."""
    conv = layer.conv
    (k,), (s,) = conv.kernel_size, conv.stride
    n = (wav.shape[0] - k) // s + 1
    if n < 1:
        raise ValueError(f"waveform of {wav.shape[0]} samples is shorter than the first kernel ({k})")
    windows = wav.float().as_strided((n, k), (s, 1))
    weight = conv.weight.float()[:, 0, :]  # [C, k]
    norm = layer.layer_norm
    if isinstance(norm, nn.GroupNorm):
        # Per-channel statistics over time: run channel-major, where
        # group_norm is a fast contiguous reduction, then go time-major.
        y = weight @ windows.t()
        if conv.bias is not None:
            y += conv.bias.float()[:, None]
        y = F.group_norm(y[None], norm.num_groups, norm.weight.float(), norm.bias.float(), norm.eps)[0]
        return F.gelu(y).t().to(dtype).contiguous()
    y = F.linear(windows, weight, None if conv.bias is None else conv.bias.float())
    if norm is not None:
        y = F.layer_norm(y, norm.normalized_shape, norm.weight.float(), norm.bias.float(), norm.eps)
    return F.gelu(y).to(dtype)


def utterance_features(feature_extractor, wav):
    """CNN features [F, C] of one unpadded 1-D waveform; equals torchaudio's
    `feature_extractor(wav[None], None)[0][0]` up to rounding."""
    layers = feature_extractor.conv_layers
    dtype = layers[0].conv.weight.dtype
    x = _first_layer(wav, layers[0], dtype)
    for layer in layers[1:]:
        x = conv_time_major(x, layer.conv)
        if layer.layer_norm is not None:  # layer_norm mode: over channels, i.e. the last dim here
            norm = layer.layer_norm
            x = F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        x = F.gelu(x)
    return x


def batch_features(feature_extractor, wav, lengths=None):
    """Padded CNN features [B, F, C] (zeros past each utterance's frames) and the
    frame counts [B] of a zero-padded batch `wav` [B, T] with valid `lengths`."""
    if lengths is None:
        lengths = torch.full((wav.shape[0],), wav.shape[1], dtype=torch.long)
    feats = [utterance_features(feature_extractor, wav[i, : int(n)]) for i, n in enumerate(lengths.tolist())]
    frame_lengths = torch.tensor([f.shape[0] for f in feats], device=wav.device)
    return nn.utils.rnn.pad_sequence(feats, batch_first=True), frame_lengths
