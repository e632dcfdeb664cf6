"""SLS back-end: Sensitive Layer Selection over every transformer layer (Zhang et al., ACM MM 2024).

Each layer's output is averaged over time and scored by one shared
Linear(D, 1) + sigmoid; the layers are summed with these weights, and the
fused [T, D] map goes through BatchNorm2d(1), SELU, 3x3 max pooling,
flattening, Linear(-, hidden), SELU, Linear(hidden, 2) and SELU (the published
classifier ends with that SELU; its log-softmax is left to the loss).

The published head only accepts 201 frames (64,600 samples): its first Linear
takes the flattened (201 // 3) x (D // 3) map. Here the 3-wide pooling over
channels stays, and pooling over time is adaptive, to `frames // 3` windows of
the utterance's valid frames: for 201 frames the windows are exactly the
published [3i, 3i + 3), so 64,600-sample input scores as published, and any
other length (and a padded batch) is accepted. The layer means ignore padded
frames. In training, BatchNorm's batch statistics include padded frames (the
published recipe's fixed-length batches have none).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adf.models.backends import Backend, register_backend
from adf.models.backends.masking import lengths_of, masked_mean

# published checkpoint (SLSforASVspoof-2021-DF / -5, `Model`) -> this module's parameter names
PUBLISHED_KEYS = [(rf"{old}\.(\w+)", rf"{new}.\1") for old, new in
                  (("fc0", "layer_score"), ("first_bn", "norm"), ("fc1", "hidden"), ("fc3", "out"))]

PUBLISHED_FRAMES = 201  # 64,600 samples through the wav2vec 2.0 CNN


class SLSBackend(Backend):
    """`forward(feats [B, L, T, D], mask [B, T] or None) -> logits [B, 2]` (see module docstring);
    the embedding is the hidden layer's output."""

    layers = "all"
    default_input = "first-64600"
    paper_name = "SLS"
    published_keys = PUBLISHED_KEYS

    def __init__(self, embed_dim, num_layers=None, hidden=1024, frames=PUBLISHED_FRAMES, pool=3):
        del num_layers  # one weight per layer from a shared Linear: any count
        super().__init__()
        self.pool = pool
        self.pooled_frames = frames // pool
        self.layer_score = nn.Linear(embed_dim, 1)
        self.norm = nn.BatchNorm2d(num_features=1)
        self.hidden = nn.Linear(self.pooled_frames * (embed_dim // pool), hidden)
        self.out = nn.Linear(hidden, 2)

    @staticmethod
    def config_from_state_dict(sd):
        """The constructor arguments that give state dict `sd` (this module's keys) its shapes."""
        embed_dim = sd["layer_score.weight"].shape[1]
        hidden, flat = sd["hidden.weight"].shape
        pooled, rest = divmod(flat, embed_dim // 3)
        if rest:
            raise ValueError(f"hidden.weight {tuple(sd['hidden.weight'].shape)} does not fit {embed_dim}-dim features")
        return dict(embed_dim=embed_dim, hidden=hidden, frames=3 * pooled)

    def layer_weights(self, feats, mask):
        """The sigmoid weight of each layer [B, L] from its time-averaged output."""
        return torch.sigmoid(self.layer_score(masked_mean(feats, mask, dim=2))).squeeze(-1)

    def forward(self, feats, mask=None, return_embedding=False):
        batch, _, frames, _ = feats.shape
        fused = (feats * self.layer_weights(feats, mask)[:, :, None, None]).sum(dim=1)
        x = F.selu(self.norm(fused.unsqueeze(1)))
        x = F.max_pool2d(x, (1, self.pool))  # channels: as published (floor, last odd ones dropped)
        lengths = lengths_of(mask, batch, frames, feats.device).tolist()
        if all(n == frames for n in lengths):
            x = F.adaptive_max_pool2d(x, (self.pooled_frames, x.shape[-1]))
        else:  # each utterance pooled over its own valid frames
            x = torch.cat([F.adaptive_max_pool2d(x[i:i + 1, :, :n], (self.pooled_frames, x.shape[-1]))
                           for i, n in enumerate(lengths)])
        emb = F.selu(self.hidden(x.flatten(1)))
        logits = F.selu(self.out(emb))
        return (logits, emb) if return_embedding else logits


register_backend("sls", SLSBackend)
