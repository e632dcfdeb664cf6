"""Optional training losses on the pooled utterance embedding.

OC-softmax (one-class softmax; Zhang, Jiang & Li, "One-class learning towards
synthetic voice spoofing detection", IEEE SPL 2021) learns one direction `w` in
embedding space and scores an utterance by the cosine between its embedding
and `w`. Bona fide speech (the target class; label 1 = real in adf) is pushed
above the margin `margin_real`, fakes below `margin_fake`:

    loss = mean softplus(scale * (margin_real - cos))   for real,
                softplus(scale * (cos - margin_fake))   for fake.

Fakes only need to stay away from the real cluster, which is meant to
generalise better to unseen attacks than a two-class softmax. The paper's
defaults are margin_real 0.9, margin_fake 0.2, scale 20.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class OCSoftmax(nn.Module):
    """`forward(emb [B, D], labels [B] with 1 = real) -> (loss, score [B])`.

    The score is the cosine similarity to the learnt real direction, in [-1, 1];
    higher = more likely real, as everywhere in adf. `score(emb)` gives it
    without labels (for evaluation).
    """

    def __init__(self, embed_dim, margin_real=0.9, margin_fake=0.2, scale=20.0):
        super().__init__()
        if not -1.0 <= margin_fake < margin_real <= 1.0:
            raise ValueError(f"need -1 <= margin_fake < margin_real <= 1, got "
                             f"{margin_fake} and {margin_real}")
        self.margin_real = margin_real
        self.margin_fake = margin_fake
        self.scale = scale
        self.center = nn.Parameter(torch.randn(embed_dim) / embed_dim ** 0.5)

    def score(self, emb):
        """Cosine similarity [B] between each embedding and the real direction."""
        return F.cosine_similarity(emb, self.center.to(emb.dtype)[None, :], dim=-1)

    def forward(self, emb, labels):
        score = self.score(emb)
        real = labels.to(torch.bool)
        margin = torch.where(real, self.margin_real - score, score - self.margin_fake)
        return F.softplus(self.scale * margin).mean(), score

    def extra_repr(self):
        return (f"embed_dim={self.center.numel()}, margin_real={self.margin_real}, "
                f"margin_fake={self.margin_fake}, scale={self.scale}")
