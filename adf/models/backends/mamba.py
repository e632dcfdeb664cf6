"""Bidirectional Mamba back-end (XLSR-Mamba: Xiao & Das, 2024).

The last SSL layer is projected to `d_model` (Linear), normalised by
BatchNorm2d(1) over the whole [T, d_model] map and SELU-activated, then
dropout (0.1). Two stacks of `n_layer` Mamba blocks read it, one forward in
time and one on the time-reversed sequence. A block adds its input to the
running residual, RMS-normalises the sum and applies a Mamba mixer (Gu & Dao,
2023: in-projection to 2 x expand x d_model, causal depthwise convolution +
SiLU, input-dependent delta/B/C, selective scan gated by SiLU(z),
out-projection). Each direction ends with a shared RMSNorm, attention pooling
over time (Linear(d, 1), softmax), and the two pooled vectors are merged by
Linear(2d, d), dropout and Linear(d, 2).

Published quirk, reproduced because it changes every output of the released
code: its final norm of each direction adds the running residual to the
stack's *input* (the dropout output, in forward time order even for the
reversed stack) instead of to the last block's mixer output, which is thus
never used (`published_final_norm=True`; False gives the standard Mamba
ending).

Padding: the reversed stack reverses each utterance within its own length,
so padded frames stay at the end, where the causal convolution and scan never
let them reach valid frames; attention pooling ignores them. A batch scores as
its utterances alone.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from adf.models.backends import Backend, register_backend
from adf.models.backends.masking import lengths_of, masked_softmax
from adf.models.backends.selective_scan import selective_scan

# published checkpoint (XLSR-Mamba, `Model`) -> this module's parameter names
PUBLISHED_KEYS = [
    (r"LL\.(\w+)", r"proj.\1"),
    (r"first_bn\.(\w+)", r"norm.\1"),
    (r"conformer\.(forward|backward)_layers\.(\d+)\.(mixer\.\w+(\.\w+)?|norm\.weight)", r"\1_layers.\2.\3"),
    (r"conformer\.norm_f\.weight", "final_norm.weight"),
    (r"conformer\.f_attention_pool\.(\w+)", r"forward_pool.\1"),
    (r"conformer\.b_attention_pool\.(\w+)", r"backward_pool.\1"),
    (r"conformer\.LL\.(\w+)", r"merge.\1"),
    (r"conformer\.classifier\.(\w+)", r"out.\1"),
]


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight (no bias, as mamba_ssm's)."""

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


class MambaMixer(nn.Module):
    """One Mamba (S6) layer with mamba_ssm's parameter names: [B, T, d_model] -> [B, T, d_model]."""

    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, dt_rank=None):
        super().__init__()
        self.d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = dt_rank or math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner)
        # Mamba's initialisation of A (S4D-real) and of dt (log-uniform in [1e-3, 0.1])
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1).float()).repeat(self.d_inner, 1))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        with torch.no_grad():
            dt = torch.exp(torch.rand(self.d_inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus

    def forward(self, x):
        length = x.shape[1]
        xz = self.in_proj(x).transpose(1, 2)  # [B, 2 d_inner, T]
        u, z = xz.chunk(2, dim=1)
        u = F.silu(self.conv1d(u)[..., :length])  # causal: the padding's tail is cut
        dt, B, C = self.x_proj(u.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = (dt @ self.dt_proj.weight.t()).transpose(1, 2)  # bias goes in the scan
        y = selective_scan(u, delta, -torch.exp(self.A_log.float()), B.transpose(1, 2), C.transpose(1, 2),
                           self.D.float(), z=z, delta_bias=self.dt_proj.bias.float())
        return self.out_proj(y.transpose(1, 2))


class MambaBlock(nn.Module):
    """residual = x + residual; x = mixer(RMSNorm(residual)); returns (x, residual) (fp32 residual)."""

    def __init__(self, d_model, **mixer):
        super().__init__()
        self.mixer = MambaMixer(d_model, **mixer)
        self.norm = RMSNorm(d_model)

    def forward(self, x, residual=None):
        residual = (x + residual if residual is not None else x).float()
        return self.mixer(self.norm(residual.to(self.norm.weight.dtype))), residual


def reverse_within_lengths(x, lengths):
    """x [B, T, ...] with each row's first lengths[b] steps reversed, padding left in place."""
    frames = x.shape[1]
    t = torch.arange(frames, device=x.device)[None, :]
    idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return x.gather(1, idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x))


class MambaBackend(Backend):
    """`forward(feats [B, T, D], mask [B, T] or None) -> logits [B, 2]` (module docstring);
    the embedding is the merged pooled vector."""

    default_input = "first-64600"
    paper_name = "BiMamba"
    published_keys = PUBLISHED_KEYS

    def __init__(self, embed_dim, num_layers=None, d_model=144, n_layer=6, d_state=16, d_conv=4, expand=2, dropout=0.1,
                 published_final_norm=True):
        del num_layers  # reads the last layer only
        super().__init__()
        self.published_final_norm = published_final_norm
        mixer = dict(d_state=d_state, d_conv=d_conv, expand=expand)
        self.proj = nn.Linear(embed_dim, d_model)
        self.norm = nn.BatchNorm2d(num_features=1)
        self.forward_layers = nn.ModuleList(MambaBlock(d_model, **mixer) for _ in range(n_layer))
        self.backward_layers = nn.ModuleList(MambaBlock(d_model, **mixer) for _ in range(n_layer))
        self.final_norm = RMSNorm(d_model)
        self.forward_pool = nn.Linear(d_model, 1)
        self.backward_pool = nn.Linear(d_model, 1)
        self.merge = nn.Linear(2 * d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, 2)

    @staticmethod
    def config_from_state_dict(sd):
        """The constructor arguments that give state dict `sd` (this module's keys) its shapes."""
        d_model, embed_dim = sd["proj.weight"].shape
        inner, d_state = sd["forward_layers.0.mixer.A_log"].shape
        return dict(embed_dim=embed_dim, d_model=d_model, d_state=d_state, expand=inner // d_model,
                    n_layer=len({k.split(".")[1] for k in sd if k.startswith("forward_layers.")}),
                    d_conv=sd["forward_layers.0.mixer.conv1d.weight"].shape[2])

    def _direction(self, layers, x, stack_input):
        residual = None
        for layer in layers:
            x, residual = layer(x, residual)
        last = stack_input if self.published_final_norm else x
        return self.final_norm((last + residual).to(self.final_norm.weight.dtype))

    def _pool(self, score, x, mask):
        weights = masked_softmax(score(x), mask, dim=1)  # [B, T, 1]
        return (weights * x).sum(dim=1)

    def forward(self, feats, mask=None, return_embedding=False):
        batch, frames, _ = feats.shape
        x = F.selu(self.norm(self.proj(feats).unsqueeze(1))).squeeze(1)
        x = self.dropout(x)
        lengths = lengths_of(mask, batch, frames, x.device)
        forward = self._direction(self.forward_layers, x, x)
        backward = self._direction(self.backward_layers, reverse_within_lengths(x, lengths), x)
        pooled = torch.cat([self._pool(self.forward_pool, forward, mask),
                            self._pool(self.backward_pool, backward, mask)], dim=-1)
        emb = self.merge(pooled)
        logits = self.out(self.dropout(emb))
        return (logits, emb) if return_embedding else logits


register_backend("mamba", MambaBackend)
