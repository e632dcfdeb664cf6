"""Mamba's selective scan: pure PyTorch on every device, mamba_ssm's CUDA kernel when installed.

The scan runs, for every channel d and state n, the recurrence

    h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t,    y_t = C_t . h_t + D u_t,

with delta = softplus(delta + delta_bias), then gates y by SiLU(z) (Gu & Dao,
2023). `selective_scan` is the one place that picks the implementation:
mamba_ssm's `selective_scan_fn` for CUDA tensors when the package imports,
otherwise `chunked_scan` (tests check both against a step-by-step loop).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F


@functools.cache
def _cuda_kernel():
    """mamba_ssm's selective_scan_fn, or None when mamba_ssm (with its CUDA extension) is absent."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except ImportError:
        return None
    return selective_scan_fn


def chunked_scan(u, delta, A, B, C, D, z=None, delta_bias=None, chunk=None):
    """The selective scan in two sequential sweeps of about sqrt(L) steps each.

    u, delta, z: [batch, d, L]; A: [d, n]; B, C: [batch, n, L]; D, delta_bias: [d].
    The sequence is cut into blocks of `chunk` steps (default ceil(sqrt(L))).
    Sweep 1 runs the recurrence inside every block at once, from a zero state;
    sweep 2 carries each block's final state into the next; a block's states
    then gain the carried state times its cumulative decay exp(S_t) (S_t <= 0:
    nothing overflows however fast states decay). Memory is that of the
    step-by-step loop (one [batch, d, L, n] tensor), with 2 sqrt(L) instead of
    L sequential steps. Returns y [batch, d, L] in u's dtype (computed in fp32).
    """
    dtype = u.dtype
    u, delta, A, B, C = u.float(), delta.float(), A.float(), B.float(), C.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()[:, None]
    delta = F.softplus(delta)
    batch, d, length = u.shape
    n = A.shape[1]
    k = chunk or max(1, math.ceil(math.sqrt(length)))
    blocks = -(-length // k)
    pad = blocks * k - length
    log_decay = F.pad(delta, (0, pad))[..., None] * A[:, None, :]  # [b, d, L', n]; 0 (no decay) on padding
    drive = F.pad(delta * u, (0, pad))[..., None] * F.pad(B, (0, pad)).transpose(1, 2)[:, None]
    log_decay = log_decay.view(batch, d, blocks, k, n)
    drive = drive.view(batch, d, blocks, k, n)
    decay = torch.exp(log_decay)
    local, h = [], drive.new_zeros(batch, d, blocks, n)
    for j in range(k):  # sweep 1: inside all blocks at once
        h = decay[:, :, :, j] * h + drive[:, :, :, j]
        local.append(h)
    local = torch.stack(local, dim=3)  # [b, d, blocks, k, n]
    since_start = torch.exp(torch.cumsum(log_decay, dim=3))  # decay from a block's start to step t
    carried, c = [], drive.new_zeros(batch, d, n)
    for i in range(blocks):  # sweep 2: the state entering each block
        carried.append(c)
        c = since_start[:, :, i, -1] * c + local[:, :, i, -1]
    states = local + since_start * torch.stack(carried, dim=2)[:, :, :, None, :]
    C = F.pad(C, (0, pad)).view(batch, n, blocks, k)
    y = torch.einsum("bdikn,bnik->bdik", states, C).reshape(batch, d, blocks * k)[:, :, :length]
    y = y + u * D.float()[:, None]
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(dtype)


def selective_scan(u, delta, A, B, C, D, z=None, delta_bias=None):
    """y = selective scan (module docstring), on the CUDA kernel when available."""
    kernel = _cuda_kernel() if u.is_cuda else None
    if kernel is not None:
        return kernel(u, delta, A, B, C, D, z=z, delta_bias=delta_bias, delta_softplus=True)
    return chunked_scan(u, delta, A, B, C, D, z=z, delta_bias=delta_bias)
