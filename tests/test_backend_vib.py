"""VIB back-end: KL against hand-computed values, sampling in training, the mean at evaluation."""
from __future__ import annotations

import math

import torch

from adf.models.backends.vib import VIBBackend, gaussian_kl
from backend_checks import padding_gap, toy_task, train_losses


def test_kl_matches_hand_computed_values():
    mu = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    sigma = torch.tensor([[1.0, 1.0], [0.5, 2.0]])
    # row 2: 0.5 * [(1 + 0.25 - 1 - ln 0.25) + (4 + 4 - 1 - ln 4)]
    by_hand = 0.5 * ((1.0 + 0.25 - 1.0 - math.log(0.25)) + (4.0 + 4.0 - 1.0 - math.log(4.0)))
    kl = gaussian_kl(mu, sigma)
    assert abs(kl[0].item()) < 1e-7
    assert abs(kl[1].item() - by_hand) < 1e-6
    # against torch.distributions, an independent implementation
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, sigma),
                                            torch.distributions.Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(kl, ref, atol=1e-6)


def _head():
    torch.manual_seed(0)
    return VIBBackend(embed_dim=8, bottleneck=4, beta=0.5)


def test_aux_loss_is_beta_times_batch_mean_kl_in_training_only():
    head = _head().train()
    feats = torch.randn(3, 10, 8)
    head(feats, None)
    mu, sigma = head.posterior(feats)
    assert torch.allclose(head.aux_loss, 0.5 * gaussian_kl(mu, sigma).mean())
    assert head.aux_loss.requires_grad
    head.eval()
    head(feats, None)
    assert head.aux_loss is None


def test_eval_uses_the_mean_and_training_samples():
    head = _head()
    feats = torch.randn(2, 10, 8)
    head.eval()
    mu, _ = head.posterior(feats)
    assert torch.equal(head(feats), head.classifier(mu))
    head.train()
    a, b = head(feats), head(feats)
    assert not torch.allclose(a, b)  # a fresh z each call
    torch.manual_seed(3)
    c = head(feats)
    mu, sigma = head.posterior(feats)
    torch.manual_seed(3)
    eps = torch.randn_like(sigma)
    assert torch.allclose(c, head.classifier(mu + sigma * eps), atol=1e-6)


def test_padding_is_ignored():
    assert padding_gap(_head().eval(), torch.randn(2, 12, 8), [12, 7]) < 1e-6


def test_ce_plus_kl_trains():
    head = _head().train()
    feats, labels = toy_task(frames=10, dim=8)
    losses = train_losses(head, feats, labels, steps=60, lr=3e-2, aux=True)
    assert losses[-1] < losses[0]
    head.eval()
    assert (head(feats).argmax(-1) == labels).float().mean() == 1.0
