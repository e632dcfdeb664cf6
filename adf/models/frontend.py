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

The first layer (one input channel, kernel 10) is computed in fp32 whatever
the weights' dtype, so a bf16 model does not first round the waveform to 8
bits of mantissa. Its output is the largest activation of the model (512
channels at 3,200 frames per second), so it is produced in blocks of frames
that stay in cache from the GEMM to the cast, and w2v_small's per-channel
group norm is folded into the GEMM's weights (`_fold_channel_norm`): in bf16
this cut the layer from a third of w2v_small's forward pass to under a tenth.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adf.models.derived import cached


BLOCK = 1024  # layer 0's frames per block: 2 MiB of fp32 activations at 512 channels


def _taps(conv):
    """The kernel's taps as contiguous [C_in, C_out] matrices, cached on the
    module until its weight changes (adf.models.derived)."""
    w = conv.weight
    return cached(conv, "_adf_taps", [w], lambda: [w[:, :, j].t().contiguous() for j in range(conv.kernel_size[0])])


def conv_time_major(x, conv):
    """`conv` (an nn.Conv1d, no padding/dilation/groups) applied to x [T, C_in] -> [T_out, C_out]."""
    (k,), (s,) = conv.kernel_size, conv.stride
    n = (x.shape[0] - k) // s + 1
    if n < 1:
        raise ValueError(f"input of {x.shape[0]} steps is shorter than the kernel ({k})")
    taps = _taps(conv)
    span = (n - 1) * s + 1
    out = x[0:span:s] @ taps[0]
    if conv.bias is not None:
        out += conv.bias
    for j in range(1, k):
        out.addmm_(x[j : j + span : s], taps[j])
    return out


def _fold_channel_norm(windows, weight, norm):
    """(weight, bias) of the one linear map that equals layer 0's convolution
    followed by its per-channel group norm over time (w2v_small's CNN).

    Channel c of the convolution is w_c . x_t (+ a bias, which the norm's mean
    removes), so its mean over time is w_c . mu and its variance w_c' S w_c,
    with mu and S the mean and (biased) covariance of the k-sample windows x_t:
    a k x k matrix, computed in fp64. The normalisation and the affine map then
    fold into the GEMM's weight and bias, and the [C, T] activation is never
    normalised, transposed or copied (this layer took a third of a bf16 forward).
    """
    if norm.num_groups != weight.shape[0]:
        raise ValueError(f"group norm with {norm.num_groups} groups over {weight.shape[0]} channels: "
                         "only the per-channel norm of wav2vec 2.0 is supported")
    x = windows.double()
    mu = x.mean(dim=0)
    centred = x - mu
    cov = centred.t() @ centred / x.shape[0]
    w = weight.double()
    scale = norm.weight.double() / torch.sqrt(((w @ cov) * w).sum(dim=1) + norm.eps)
    return (w * scale[:, None]).float(), (norm.bias.double() - scale * (w @ mu)).float()


def _first_layer(wav, layer, dtype):
    """Layer 0 (1 input channel) in fp32 -> [T_out, C] in `dtype`."""
    conv = layer.conv
    (k,), (s,) = conv.kernel_size, conv.stride
    n = (wav.shape[0] - k) // s + 1
    if n < 1:
        raise ValueError(f"waveform of {wav.shape[0]} samples is shorter than the first kernel ({k})")
    windows = wav.float().as_strided((n, k), (s, 1))
    weight = conv.weight.float()[:, 0, :]  # [C, k]
    bias = torch.zeros(weight.shape[0]) if conv.bias is None else conv.bias.float()
    norm = layer.layer_norm
    if isinstance(norm, nn.GroupNorm):
        weight, bias = _fold_channel_norm(windows, weight, norm)
        norm = None
    # The bias rides in the GEMM as a column of ones (K = k + 1), so each block
    # is written once rather than first filled with the broadcast bias.
    inputs = torch.ones(n, k + 1)
    inputs[:, :k] = windows
    matrix = torch.cat([weight, bias[:, None]], dim=1).t().contiguous()  # [k + 1, C]
    # Time-major [T_out, C], in blocks of frames that stay in cache through the
    # GEMM, norm, GELU and the cast: the fp32 activation never goes to memory whole.
    out = torch.empty(n, weight.shape[0], dtype=dtype)
    for start in range(0, n, BLOCK):
        y = inputs[start : start + BLOCK] @ matrix
        if norm is not None:
            y = F.layer_norm(y, norm.normalized_shape, norm.weight.float(), norm.bias.float(), norm.eps)
        torch.ops.aten.gelu_(y)
        out[start : start + BLOCK] = y
    return out


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
        torch.ops.aten.gelu_(x)
    return x


def batch_features(feature_extractor, wav, lengths=None):
    """Padded CNN features [B, F, C] (zeros past each utterance's frames) and the
    frame counts [B] of a zero-padded batch `wav` [B, T] with valid `lengths`."""
    if lengths is None:
        lengths = torch.full((wav.shape[0],), wav.shape[1], dtype=torch.long)
    feats = [utterance_features(feature_extractor, wav[i, : int(n)]) for i, n in enumerate(lengths.tolist())]
    frame_lengths = torch.tensor([f.shape[0] for f in feats], device=wav.device)
    return nn.utils.rnn.pad_sequence(feats, batch_first=True), frame_lengths
