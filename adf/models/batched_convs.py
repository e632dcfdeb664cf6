"""The backbone's convolutions as GEMMs on time-major batches, for GPUs.

A profile of bf16 inference and training on an H200 (bench/README.md, GPU)
found the convolutions of torchaudio's modules, not the transformer, setting
the pace:

- The CNN feature encoder runs channel-major ([B, C, T]) and its layer norms
  normalise over channels, so every layer transposes its largest activations
  (512 channels at up to 3,200 frames per second) to [B, T, C] and back:
  strided copies took a quarter of a forward pass and more of a training step.
- The positional convolution (kernel 128, 16 groups) is a grouped convolution
  for which cuDNN picks slow kernels: with 80 channels a group (xlsr_1b) it
  took most of the forward pass.

Here the same modules' weights are applied time-major ([B, T, C]) as matrix
products: each convolution unfolds its input windows into rows (im2col, a
copy of k times the input for stride 1, 1.5 times for the CNN's kernel 3 /
stride 2) and multiplies them by the kernel as one [C_in * k, C_out] matrix,
with fp32 accumulation inside cuBLAS as in cuDNN. Layer norms then run over
the contiguous last dimension. The results equal torchaudio's modules up to
rounding on the whole padded batch (padded frames included), under autocast
and with gradients, so training and inference can both use them.

On the CPU adf keeps its own inference path (adf.models.frontend), and
training there keeps torchaudio's modules.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def _compute_dtype(x):
    """The dtype matrix products run in: autocast's when it is on, else x's own."""
    if torch.is_autocast_enabled(x.device.type) and x.is_floating_point():
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def _unfolded_linear(x, weight, bias, stride, frames):
    """Convolution of x [B, T, C_in] (time-major) with weight [C_out, C_in, k] at
    `stride`, first `frames` outputs -> [B, frames, C_out], as one GEMM over rows
    that hold each window's C_in x k samples (the weight's own layout)."""
    c_out, c_in, k = weight.shape
    cols = x.unfold(1, k, stride)[:, :frames]  # [B, frames, C_in, k], a view
    return F.linear(cols.reshape(x.shape[0], frames, c_in * k), weight.reshape(c_out, c_in * k), bias)


def supports_cnn(feature_extractor):
    """Whether `cnn_features` applies: every norm of the CNN is over channels
    (extractor_mode "layer_norm"); wav2vec 2.0 Base's group norm over time is not."""
    from torchaudio.models.wav2vec2.components import LayerNorm

    return all(layer.layer_norm is None or isinstance(layer.layer_norm, LayerNorm)
               for layer in feature_extractor.conv_layers)


def cnn_features(feature_extractor, wav, lengths=None):
    """torchaudio's `feature_extractor(wav, lengths)` for a layer-norm CNN, time-major:
    wav [B, T] -> (features [B, F, C], frame counts [B] or None)."""
    x = wav[:, :, None]  # [B, T, 1]: the waveform is a one-channel time-major signal
    for layer in feature_extractor.conv_layers:
        conv = layer.conv
        (k,), (s,) = conv.kernel_size, conv.stride
        frames = (x.shape[1] - k) // s + 1
        if frames < 1:
            raise ValueError(f"input of {x.shape[1]} steps is shorter than the kernel ({k}) of a CNN layer")
        x = _unfolded_linear(x.to(_compute_dtype(x)), conv.weight, conv.bias, s, frames)
        norm = layer.layer_norm
        if norm is not None:  # over channels: the contiguous last dimension here
            x = F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        x = F.gelu(x)
        if lengths is not None:
            lengths = torch.clamp(torch.div(lengths - k, s, rounding_mode="floor") + 1, min=0)
    return x, lengths


def _weight_norm_key(originals):
    return tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in originals)


def _positional_weight(conv):
    """The positional convolution's weight [D, D / groups, k]. torchaudio keeps it
    weight-normed (a parametrization recomputed at every access: a strided norm
    over the kernel's 128 taps, 1 ms a forward pass for xlsr_1b), so without
    gradients it is cached on the module (a plain attribute, not in state dicts)
    until one of the stored tensors changes (storage, version counter, dtype)."""
    params = getattr(conv, "parametrizations", None)
    originals = list(params["weight"].parameters(recurse=False)) if params is not None else [conv.weight]
    if (torch.is_grad_enabled() and any(p.requires_grad for p in originals)) or any(p.is_inference()
                                                                                     for p in originals):
        return conv.weight
    key = _weight_norm_key(originals)
    cached = getattr(conv, "_adf_weight", None)
    if cached is None or cached[0] != key:
        with torch.no_grad():
            cached = (key, conv.weight.detach())
        conv._adf_weight = cached
    return cached[1]


def positional_embedding(pos_conv_embed, x):
    """torchaudio's `ConvolutionalPositionalEmbedding` (grouped convolution with
    'same' padding, last frame dropped for an even kernel, GELU) of x [B, T, D],
    one GEMM per group. Training recomputes each group's unfolded rows in the
    backward pass instead of storing them (k times the input)."""
    conv = pos_conv_embed.conv
    weight = _positional_weight(conv)
    (k,), (pad,), groups = conv.kernel_size, conv.padding, conv.groups
    batch, steps, dim = x.shape
    width = dim // groups
    frames = steps + 2 * pad - k + 1 - pos_conv_embed.num_remove
    padded = F.pad(x.to(_compute_dtype(x)), (0, 0, pad, pad))
    recompute = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    parts = []
    for g in range(groups):
        part = slice(g * width, (g + 1) * width)
        args = (padded[:, :, part], weight[part], None if conv.bias is None else conv.bias[part], 1, frames)
        parts.append(checkpoint(_unfolded_linear, *args, use_reentrant=False) if recompute
                     else _unfolded_linear(*args))
    return F.gelu(torch.cat(parts, dim=-1))
