"""VIB back-end: variational information bottleneck head (Wav2Vec + VIB, Eom et al., Interspeech 2022).

The utterance embedding (mean of the valid frames) is encoded into a Gaussian
q(z|x) = N(mu, diag(sigma^2)) by one Linear(D, 2K) (mu, and sigma = softplus
of the second half); z is sampled with the reparameterisation
z = mu + sigma * eps in training and is mu at evaluation; Linear(K, 2)
classifies z. The bottleneck's loss term, beta * KL(q(z|x) || N(0, I)) averaged
over the batch, is left in `aux_loss` by training forward passes for the
Brain to add to the cross-entropy.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from adf.models.backends import Backend, register_backend
from adf.models.backends.masking import masked_mean


def gaussian_kl(mu, sigma):
    """KL(N(mu, diag(sigma^2)) || N(0, I)) per row: 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2)."""
    return 0.5 * (mu.pow(2) + sigma.pow(2) - 1.0 - 2.0 * torch.log(sigma)).sum(dim=-1)


class VIBBackend(Backend):
    """`forward(feats [B, T, D], mask [B, T] or None) -> logits [B, 2]`; sets `aux_loss`;
    the embedding is z."""

    default_input = "whole"  # no published input length: AntiDeepfake's whole-utterance policy
    paper_name = "VIB"

    def __init__(self, embed_dim, num_layers=None, bottleneck=256, beta=1e-3):
        del num_layers  # reads the last layer only
        super().__init__()
        self.bottleneck = bottleneck
        self.beta = beta
        self.encoder = nn.Linear(embed_dim, 2 * bottleneck)
        self.classifier = nn.Linear(bottleneck, 2)
        self.aux_loss = None

    @staticmethod
    def config_from_state_dict(sd):
        """The constructor arguments that give state dict `sd` (this module's keys) its shapes
        (beta, a training weight, is not among them)."""
        return dict(embed_dim=sd["encoder.weight"].shape[1], bottleneck=sd["classifier.weight"].shape[1])

    def posterior(self, feats, mask=None):
        """(mu, sigma) [B, K] of q(z|x)."""
        stats = self.encoder(masked_mean(feats, mask, dim=1))
        mu, raw = stats.split(self.bottleneck, dim=-1)
        return mu, F.softplus(raw) + 1e-6  # floor: log(sigma) stays finite

    def forward(self, feats, mask=None, return_embedding=False):
        mu, sigma = self.posterior(feats, mask)
        z = mu + sigma * torch.randn_like(sigma) if self.training else mu
        # the loss term only in training (evaluation leaves it None, as the interface asks)
        self.aux_loss = self.beta * gaussian_kl(mu, sigma).mean() if self.training else None
        logits = self.classifier(z)
        return (logits, z) if return_embedding else logits


register_backend("vib", VIBBackend)
