"""Checks every back-end test runs: padding invariance and learning a separable toy task."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def padding_gap(head, feats, lengths, pad_value=40.0):
    """Max |difference| between `head` on a padded batch (padding filled with `pad_value`) and
    on each utterance alone; `feats` is [B, T, D] or [B, L, T, D] (all layers)."""
    time = feats.dim() - 2
    frames = feats.shape[time]
    mask = torch.arange(frames)[None, :] < torch.tensor(lengths)[:, None]
    noisy = feats.clone()
    view = noisy if time == 1 else noisy.transpose(1, 2)
    view[~mask] = pad_value
    with torch.no_grad():
        batched = head(noisy, mask)
        alone = torch.cat([head(feats[i:i + 1].narrow(time, 0, n), None) for i, n in enumerate(lengths)])
    return (batched - alone).abs().max().item()


def train_losses(head, feats, labels, steps=30, lr=1e-2, aux=False):
    """Cross-entropy (plus the head's aux_loss with `aux`) over `steps` Adam steps."""
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(head(feats), labels)
        if aux:
            loss = loss + head.aux_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def toy_task(frames=20, dim=12, seed=10):
    """8 utterances [8, frames, dim] whose class (0, 1, 0, 1, ...) shifts the features by 1."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor([0, 1] * 4)
    return torch.randn(8, frames, dim, generator=g) + labels[:, None, None].float(), labels
