"""The computation inside `adf export --onnx`'s graph (adf.onnx_export): the input policy and
the detector on a zero-padded batch, written without per-utterance Python loops or
data-dependent branches so that tracing keeps the batch and length axes dynamic.

(waveform float32 [B, T], lengths int64 [B]) -> (logits [B, 2] [fake, real], prob_real [B]).
Each row gets the scores of that row alone, as in `adf detect`.
"""
from __future__ import annotations

import torch
from torch import nn

from adf.input_policy import policy_of

INPUTS = ("waveform", "lengths")
OUTPUTS = ("logits", "prob_real")
ENGINE_OUTPUTS = ("logits", "embedding")  # EngineGraph (adf.onnx_engine)
EPS = 1e-5  # adf.audio.waveform_layer_norm's (F.layer_norm's default)


def apply_policy(policy, wav, lengths):
    """`policy` (an InputPolicy) on a zero-padded batch wav [B, T] with valid
    `lengths` [B]: (model input, lengths of it, or None when unpadded). Equals
    `policy.for_scoring` on each row alone, with padded samples kept at 0."""
    if policy.fixed:  # the first N samples, tiled: index i of a row is sample i mod its length
        index = torch.arange(policy.samples, device=wav.device)[None, :] % lengths[:, None]
        wav, lengths = wav.gather(1, index), None
    if policy.normalise:
        wav = _masked_layer_norm(wav, lengths)
    return wav, lengths


def _valid(lengths, steps, like):
    """[B, steps] mask of the valid steps (1.0) in `like`'s dtype."""
    return (torch.arange(steps, device=like.device)[None, :] < lengths[:, None]).to(like.dtype)


def _masked_layer_norm(wav, lengths):
    """adf.audio.waveform_layer_norm of each row over its valid samples (padding stays 0)."""
    if lengths is None:
        mean = wav.mean(dim=1, keepdim=True)
        var = ((wav - mean) ** 2).mean(dim=1, keepdim=True)
        return (wav - mean) * torch.rsqrt(var + EPS)
    valid = _valid(lengths, wav.shape[1], wav)
    count = lengths.to(wav.dtype)[:, None]
    mean = (wav * valid).sum(dim=1, keepdim=True) / count
    var = (((wav - mean) * valid) ** 2).sum(dim=1, keepdim=True) / count
    return (wav - mean) * torch.rsqrt(var + EPS) * valid


def _masked_channel_norm(x, lengths, norm):
    """nn.GroupNorm with one group per channel (w2v_small's first CNN layer) over
    the valid frames of x [B, C, F]: the statistics of each utterance alone."""
    if lengths is None:
        return norm(x)
    valid = _valid(lengths, x.shape[2], x)[:, None, :]
    count = lengths.to(x.dtype)[:, None, None]
    mean = (x * valid).sum(dim=2, keepdim=True) / count
    var = (((x - mean) * valid) ** 2).sum(dim=2, keepdim=True) / count
    y = (x - mean) * torch.rsqrt(var + norm.eps)
    return y * norm.weight[None, :, None] + norm.bias[None, :, None]


def cnn_features(feature_extractor, wav, lengths):
    """torchaudio's FeatureExtractor (its own modules and length rule) on a padded
    batch: features [B, F, C] and frame counts [B] (None when unpadded). Valid
    frames never see padded samples; group norms count valid frames only."""
    x = wav[:, None, :]
    for layer in feature_extractor.conv_layers:
        x = layer.conv(x)
        if lengths is not None:
            lengths = torch.div(lengths - layer.kernel_size, layer.stride, rounding_mode="floor") + 1
        if isinstance(layer.layer_norm, nn.GroupNorm):
            if layer.layer_norm.num_groups != x.shape[1]:
                raise ValueError("only a per-channel group norm (wav2vec 2.0's) can be masked")
            x = _masked_channel_norm(x, lengths, layer.layer_norm)
        elif layer.layer_norm is not None:
            x = layer.layer_norm(x)
        x = nn.functional.gelu(x)
    return x.transpose(1, 2), lengths


class ExportGraph(nn.Module):
    """What the ONNX file computes: (waveform [B, T], lengths [B]) -> (logits [B, 2], prob_real [B])."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.policy = policy_of(model)
        check_exportable(model, self.policy)

    def forward(self, waveform, lengths):
        wav, lengths = apply_policy(self.policy, waveform.float(), lengths)
        logits = self.scores(wav, lengths)[0]
        return logits, torch.softmax(logits, dim=1)[:, 1]

    def scores(self, wav, lengths):
        """(logits [B, 2] fp32, pooled embedding [B, E] fp32) of model inputs (the policy applied)."""
        if hasattr(self.model, "backbone"):
            logits, emb = self._ssl(wav, lengths)
        else:  # raw-waveform systems: fixed-input policies only (check_exportable), no padding
            logits, emb = self.model.detect(wav)
        return logits.float(), emb.float()

    def _ssl(self, wav, lengths):
        """SSLClassifier.forward written without per-utterance Python loops."""
        from adf.models.backends import stack_layers, uses_all_layers

        model = self.model
        head = model.head
        x, frame_lengths = cnn_features(model.backbone.feature_extractor, wav, lengths)
        layers = [] if uses_all_layers(head) else None
        x = model._encode(x, frame_lengths, False, layers)
        feats = (stack_layers(layers) if layers is not None else x).float()
        mask = None
        if frame_lengths is not None:
            mask = torch.arange(feats.shape[-2], device=feats.device)[None, :] < frame_lengths[:, None]
        return head(feats, mask, return_embedding=True)


class EngineGraph(ExportGraph):
    """What `adf detect --engine onnxruntime` runs (adf.onnx_engine): the same model
    on inputs that already went through the input policy (adf detect applies it
    while decoding), with the pooled embedding as a second output:
    (waveform [B, T], lengths [B]) -> (logits [B, 2], embedding [B, E])."""

    def forward(self, waveform, lengths):
        return self.scores(waveform.float(), None if self.policy.fixed else lengths)


def check_exportable(model, policy):
    """ValueError unless `model` scores padded batches of `policy` inputs in one graph."""
    if policy.fixed:
        return
    if not hasattr(model, "backbone"):
        raise ValueError(f"{model.name} with input policy {policy.name}: a raw-waveform system exports "
                         "with a fixed-input policy only (e.g. --input first-64600)")
    if not getattr(model.head, "takes_mask", True):
        raise ValueError(f"{model.name} with input policy {policy.name}: its back-end cannot mask "
                         "padding, so it exports with a fixed-input policy only (e.g. --input first-64600)")
