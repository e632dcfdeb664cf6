"""VIB back-end: KL against hand-computed values, sampling in training, the mean at evaluation."""
from __future__ import annotations

import math

import torch

from adf.models.backends.vib import VIBBackend, gaussian_kl


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
    head = _head().eval()
    feats = torch.randn(2, 12, 8)
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[1, 7:] = False
    batched = head(feats, mask)
    alone = head(feats[1:, :7], None)
    assert torch.allclose(batched[1], alone[0], atol=1e-6)


def test_ce_plus_kl_trains():
    head = _head().train()
    feats = torch.randn(8, 10, 8) + torch.tensor([0, 1] * 4)[:, None, None].float()
    labels = torch.tensor([0, 1] * 4)
    opt = torch.optim.Adam(head.parameters(), lr=3e-2)
    first = None
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(head(feats), labels) + head.aux_loss
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first
    head.eval()
    assert (head(feats).argmax(-1) == labels).float().mean() == 1.0
