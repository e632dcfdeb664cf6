"""The backbone's convolutions on time-major batches, for GPUs.

On GPUs torchaudio's convolution modules, not the transformer, set the pace
(the H200 profile and its numbers are in bench/README.md, GPU):

- The CNN feature encoder runs channel-major ([B, C, T]) and its layer norms
  normalise over channels, so every layer transposes its largest activations
  to [B, T, C] and back.
- The positional convolution (kernel 128, 16 groups) is a grouped convolution
  for which cuDNN picks kernels without tensor cores when a group has 80
  channels (xlsr_1b).

Here the same modules' weights are applied time-major ([B, T, C]), where layer
norms run over the contiguous last dimension, in one of two ways:

- "nhwc": cuDNN's channels-last convolution; a time-major tensor already is
  NHWC with H = 1, so nothing is transposed in either direction.
- "im2col": the input windows unfolded into rows (a copy of k times the input
  for stride 1) times the kernel as one [k * C_in, C_out] matrix, with fp32
  accumulation inside cuBLAS as in cuDNN.

The results equal torchaudio's modules up to rounding on the whole padded
batch (padded frames included), under autocast and with gradients, so
training and inference can both use them. Where SSLClassifier uses them is
decided in adf.models.conv_paths; which implementation serves which
convolution was measured, see `cnn_features` and `positional_impl`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from adf.models.derived import cached

IMPLEMENTATIONS = ("nhwc", "im2col")


def _compute_dtype(x):
    """The dtype matrix products run in: autocast's when it is on, else x's own."""
    if torch.is_autocast_enabled(x.device.type) and x.is_floating_point():
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def _rows(x, k, stride, frames):
    """The unfolded windows of x [B, T, C]: [B, frames, k * C], window step j's C
    samples contiguous (copied from contiguous runs of C, so the copy reads
    memory in order; C innermost would read it with a stride of C)."""
    windows = x.unfold(1, k, stride)[:, :frames].transpose(2, 3)  # [B, frames, k, C], a view
    return windows.reshape(x.shape[0], frames, k * x.shape[2])


def _tap_major(weight):
    """weight [C_out, C_in, k] as the [C_out, k * C_in] matrix that multiplies `_rows`."""
    return weight.permute(0, 2, 1).reshape(weight.shape[0], -1)


def _unfolded_linear(x, weight, bias, stride, frames):
    """Convolution of x [B, T, C_in] (time-major) with weight [C_out, C_in, k] at
    `stride`, first `frames` outputs -> [B, frames, C_out], as one GEMM over the
    unfolded windows."""
    return F.linear(_rows(x, weight.shape[2], stride, frames), _tap_major(weight), bias)


def _nhwc_conv(x, weight, bias, stride, frames, padding=0, groups=1):
    """The same convolution (zero `padding` both sides, `groups`) through the
    channels-last kernels of cuDNN (oneDNN on the CPU): a time-major [B, T, C]
    tensor already is NHWC with H = 1, so nothing is transposed or unfolded,
    in either direction."""
    x4 = x.unsqueeze(1).permute(0, 3, 1, 2)  # [B, C, 1, T] with channels-last strides: a view
    w4 = weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    # fp32 stays fp32 (no TF32 unless matmuls may use it too), as in the GEMM paths
    exact = x.dtype == torch.float32 and x.is_cuda and torch.get_float32_matmul_precision() == "highest"
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = tf32 and not exact
    try:
        y = F.conv2d(x4, w4, None, stride=(1, stride), padding=(0, padding), groups=groups)
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    y = y.permute(0, 2, 3, 1)[:, 0, :frames]  # [B, frames, C_out]: a view of channels-last output
    # The bias is added here, time-major and contiguous, rather than by the
    # convolution: cuDNN's separate bias kernel walked the output with strides.
    return y if bias is None else y + bias


def supports_cnn(feature_extractor):
    """Whether `cnn_features` applies: every norm of the CNN is over channels
    (extractor_mode "layer_norm"); wav2vec 2.0 Base's group norm over time is not."""
    from torchaudio.models.wav2vec2.components import LayerNorm

    return all(layer.layer_norm is None or isinstance(layer.layer_norm, LayerNorm)
               for layer in feature_extractor.conv_layers)


def cnn_features(feature_extractor, wav, lengths=None, impl="nhwc"):
    """torchaudio's `feature_extractor(wav, lengths)` for a layer-norm CNN, time-major:
    wav [B, T] -> (features [B, F, C], frame counts [B] or None). `impl`: how
    layers after the first convolve ("nhwc" or "im2col"); the first (one input
    channel, the waveform needs no gradient) is always an unfolded GEMM."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown convolution implementation {impl!r}; choose one of {IMPLEMENTATIONS}")
    x = wav[:, :, None]  # [B, T, 1]: the waveform is a one-channel time-major signal
    for i, layer in enumerate(feature_extractor.conv_layers):
        conv = layer.conv
        (k,), (s,) = conv.kernel_size, conv.stride
        frames = (x.shape[1] - k) // s + 1
        if frames < 1:
            raise ValueError(f"input of {x.shape[1]} steps is shorter than the kernel ({k}) of a CNN layer")
        conv_fn = _nhwc_conv if impl == "nhwc" and i > 0 else _unfolded_linear
        x = conv_fn(x.to(_compute_dtype(x)), conv.weight, conv.bias, s, frames)
        norm = layer.layer_norm
        if norm is not None:  # over channels: the contiguous last dimension here
            x = F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        x = F.gelu(x)
        if lengths is not None:
            lengths = torch.clamp(torch.div(lengths - k, s, rounding_mode="floor") + 1, min=0)
    return x, lengths


def _positional_weight(conv):
    """The positional convolution's weight [D, D / groups, k]. torchaudio keeps it
    weight-normed (a parametrization recomputed at every access: a strided norm
    over the kernel's 128 taps, 1 ms a forward pass for xlsr_1b), so without
    gradients it is cached on the module until one of the stored tensors changes
    (adf.models.derived)."""
    params = getattr(conv, "parametrizations", None)
    originals = list(params["weight"].parameters(recurse=False)) if params is not None else [conv.weight]
    if torch.is_grad_enabled() and any(p.requires_grad for p in originals):
        return conv.weight
    return cached(conv, "_adf_weight", originals, lambda: conv.weight.detach())


def positional_impl(pos_conv_embed):
    """The implementation "auto" picks for a positional convolution: cuDNN's
    channels-last kernels when each group has a multiple of 64 channels (mms_300m's
    64: tensor-core kernels, faster than im2col on an H200 in inference and
    training), else im2col (xlsr_1b's 80: cuDNN fell back to kernels without
    tensor cores, and im2col was faster in inference, about even in training)."""
    conv = pos_conv_embed.conv
    return "nhwc" if (conv.in_channels // conv.groups) % 64 == 0 else "im2col"


def positional_embedding(pos_conv_embed, x, impl="auto"):
    """torchaudio's `ConvolutionalPositionalEmbedding` (grouped convolution with
    'same' padding, last frame dropped for an even kernel, GELU) of x [B, T, D].
    impl "nhwc": one channels-last cuDNN convolution; "im2col": one GEMM per
    group over unfolded rows (k times the input), see `_Im2colConv`; "auto":
    `positional_impl`."""
    if impl == "auto":
        impl = positional_impl(pos_conv_embed)
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown convolution implementation {impl!r}; choose one of {IMPLEMENTATIONS} or 'auto'")
    conv = pos_conv_embed.conv
    weight = _positional_weight(conv)
    (k,), (pad,), groups = conv.kernel_size, conv.padding, conv.groups
    batch, steps, dim = x.shape
    width = dim // groups
    frames = steps + 2 * pad - k + 1 - pos_conv_embed.num_remove
    x = x.to(_compute_dtype(x))
    if impl == "nhwc":
        return F.gelu(_nhwc_conv(x, weight, conv.bias, 1, frames, padding=pad, groups=groups))
    padded = F.pad(x, (0, 0, pad, pad))
    weight = weight.to(x.dtype)
    bias = None if conv.bias is None else conv.bias.to(x.dtype)
    parts = []
    for g in range(groups):
        part = slice(g * width, (g + 1) * width)
        parts.append(_Im2colConv.apply(padded[:, :, part], weight[part], None if bias is None else bias[part],
                                       frames))
    return F.gelu(torch.cat(parts, dim=-1))


class _Im2colConv(torch.autograd.Function):
    """Stride-1 convolution as an unfolded GEMM, x [B, T, C_in] -> [B, frames, C_out],
    with its own backward: autograd's would keep the unfolded rows (k times the
    input) and fold their gradient back with `unfold_backward`, which took a
    fifth of an mms_300m training step on an H200. Here both gradients are GEMMs
    again: the weight's over recomputed rows, the input's as the convolution of
    the output gradient with the flipped, transposed kernel."""

    @staticmethod
    def forward(ctx, x, weight, bias, frames):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _unfolded_linear(x, weight, bias, 1, frames)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        c_out, c_in, k = weight.shape
        steps, frames = x.shape[1], grad.shape[1]
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            # x[t] feeds outputs t - k + 1 .. t: pad the output gradient so that
            # every input step sees k of them (zeros outside), then convolve.
            padded = F.pad(grad, (0, 0, k - 1, steps - frames))
            grad_x = _unfolded_linear(padded, weight.flip(-1).transpose(0, 1), None, 1, steps)
        if ctx.needs_input_grad[1]:
            rows = _rows(x, k, 1, frames).reshape(-1, k * c_in)
            grad_w = (grad.reshape(-1, c_out).t() @ rows).reshape(c_out, k, c_in).permute(0, 2, 1).contiguous()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=(0, 1))
        return grad_x, grad_w, grad_b, None
