"""Padding helpers shared by the back-ends: a batch must score as its utterances alone."""
from __future__ import annotations

import torch


def masked_mean(x, mask, dim):
    """Mean of `x` over `dim` (the time axis) counting only frames where `mask` [B, T] is True.

    `mask` is broadcast over the axes of `x` after `dim`; None means no padding.
    """
    if mask is None:
        return x.mean(dim=dim)
    shape = [1] * x.dim()
    shape[0], shape[dim] = mask.shape
    m = mask.to(x.dtype).view(*shape)
    return (x * m).sum(dim=dim) / m.sum(dim=dim).clamp(min=1)


def masked_softmax(scores, mask, dim):
    """softmax over the time axis `dim` of `scores`, padded frames (mask False) given weight 0."""
    if mask is not None:
        shape = [1] * scores.dim()
        shape[0], shape[dim] = mask.shape
        scores = scores.masked_fill(~mask.view(*shape), float("-inf"))
    return torch.softmax(scores, dim=dim)


def zero_padding(x, mask):
    """`x` [B, T, ...] with padded frames set to 0 (what a convolution sees past the end)."""
    if mask is None:
        return x
    return x.masked_fill(~mask.view(*mask.shape, *([1] * (x.dim() - 2))), 0.0)


def lengths_of(mask, batch, frames, device):
    """Valid frame counts [B] from `mask` (all `frames` when None)."""
    if mask is None:
        return torch.full((batch,), frames, dtype=torch.long, device=device)
    return mask.sum(dim=1)
