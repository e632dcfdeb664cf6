"""Bidirectional Mamba back-end: the selective scan against a step-by-step loop, the published
model's outputs and key layout, its final-norm quirk, padding."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adf.checkpoints.published import load_published_backend
from adf.models.backends import selective_scan as scan_module
from adf.models.backends.mamba import MambaBackend, reverse_within_lengths
from adf.models.backends.selective_scan import chunked_scan, selective_scan
from backend_checks import padding_gap, toy_task, train_losses
from published_layouts import assert_matches_published, mamba_published_shapes, published_load_error, seeded_input, seeded_state_dict


def naive_scan(u, delta, A, B, C, D, z, delta_bias):
    """The recurrence one step at a time, written from its definition."""
    delta = F.softplus(delta + delta_bias[:, None])
    batch, d, length = u.shape
    h = torch.zeros(batch, d, A.shape[1], dtype=torch.float64)
    ys = []
    for t in range(length):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1) + u * D[:, None]
    return y * F.silu(z) if z is not None else y


def _scan_inputs(batch=2, d=5, n=4, length=37, seed=0, decay=1.0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    A = -torch.exp(r(d, n)) * decay
    return dict(u=r(batch, d, length), delta=r(batch, d, length), A=A, B=r(batch, n, length),
                C=r(batch, n, length), D=r(d), z=r(batch, d, length), delta_bias=r(d))


@pytest.mark.parametrize("length,chunk", [(37, None), (37, 1), (37, 5), (37, 37), (1, None), (64, 8)])
def test_chunked_scan_equals_the_step_by_step_recurrence(length, chunk):
    x = _scan_inputs(length=length)
    ref = naive_scan(**x)
    got = chunked_scan(**{k: v.float() for k, v in x.items()}, chunk=chunk)
    assert (got.double() - ref).abs().max() < 1e-4 * max(1.0, ref.abs().max().item())


def test_fast_decay_does_not_overflow_and_z_is_optional():
    x = _scan_inputs(decay=500.0)  # exp(delta A) underflows to 0 within a step or two
    x["z"] = None
    ref = naive_scan(**x)
    got = chunked_scan(**{k: (v.float() if v is not None else None) for k, v in x.items()})
    assert torch.isfinite(got).all()
    assert (got.double() - ref).abs().max() < 1e-4 * ref.abs().max()


def test_gradients_match_the_step_by_step_recurrence():
    x = _scan_inputs(length=12)
    x_ref = {k: v.clone().requires_grad_() for k, v in x.items()}
    x_got = {k: v.clone().requires_grad_() for k, v in x.items()}
    naive_scan(**x_ref).pow(2).sum().backward()
    chunked_scan(**x_got, chunk=4).double().pow(2).sum().backward()
    for k in x:
        assert torch.allclose(x_got[k].grad, x_ref[k].grad, rtol=1e-3, atol=1e-3), k


def test_dispatch_uses_pure_pytorch_without_cuda_kernel():
    x = {k: v.float() for k, v in _scan_inputs().items()}
    assert torch.equal(selective_scan(**x), chunked_scan(**x))


@pytest.mark.skipif(not torch.cuda.is_available() or scan_module._cuda_kernel() is None,
                    reason="needs CUDA and mamba_ssm")
def test_cuda_kernel_agrees_with_pure_pytorch():
    x = {k: v.float().cuda() for k, v in _scan_inputs(length=300).items()}
    assert (selective_scan(**x) - chunked_scan(**x)).abs().max() < 1e-3



# XLSR-Mamba's `Model` (emb 144, num_encoders 4: 2 blocks per direction) with fairseq stubbed out
# to return seeded_input((2, 1, 201, 1024), 55)[:, 0] as XLS-R's last layer, weights
# seeded_state_dict(mamba_published_shapes(), 2024) with A_log = log(1..16) + 0.1 x its seeded value,
# eval mode, on the CPU with mamba_ssm 1.1.4's own reference ops (selective_scan_ref,
# rms_norm_ref) in place of its CUDA/Triton kernels: its logits.
PUBLISHED_LOGITS = [[-0.4978618323802948, -0.010383255779743195],
                    [-0.49783775210380554, -0.004917927086353302]]


def _published_checkpoint():
    shapes = mamba_published_shapes()
    sd = seeded_state_dict(shapes, 2024)
    for k in sd:
        if k.endswith("A_log"):
            sd[k] = torch.log(torch.arange(1, 17).float()).expand(shapes[k]) + 0.1 * sd[k]
    sd["ssl_model.model.encoder.layers.0.fc1.weight"] = torch.zeros(4096, 1024)  # backbone: not the head's
    return sd


def _published_model():
    return load_published_backend(MambaBackend(1024, n_layer=2), _published_checkpoint(), "mamba.pth").eval()


def test_published_checkpoint_gives_the_published_outputs():
    assert_matches_published(_published_model(), seeded_input((2, 1, 201, 1024), 55)[:, 0], PUBLISHED_LOGITS,
                             "Mamba")


def test_published_final_norm_ignores_the_last_mixers():
    head = _published_model()
    feats = seeded_input((1, 50, 1024), 3)
    with torch.no_grad():
        before = head(feats)
        for side in (head.forward_layers, head.backward_layers):
            side[-1].mixer.out_proj.weight.mul_(3.0)
        assert torch.equal(head(feats), before)  # as in the published code: never used
        head.published_final_norm = False
        assert not torch.allclose(head(feats), before)


def test_published_layout_mismatches_are_listed():
    sd = _published_checkpoint()
    sd["conformer.forward_layers.1.mixer.A_log"] = torch.zeros(288, 8)
    sd["conformer.forward_layers.2.norm.weight"] = torch.zeros(144)
    del sd["conformer.norm_f.weight"]
    msg = published_load_error(MambaBackend(1024, n_layer=2), sd, "mamba.pth")
    assert "1 missing: final_norm.weight" in msg
    assert "1 unexpected: forward_layers.2.norm.weight" in msg
    assert "forward_layers.1.mixer.A_log (288, 8) vs (288, 16) expected" in msg


def test_reverse_within_lengths():
    x = torch.arange(10).view(2, 5, 1)
    out = reverse_within_lengths(x, torch.tensor([5, 3]))
    assert out[..., 0].tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]


def _small(seed=0):
    torch.manual_seed(seed)
    head = MambaBackend(embed_dim=12, d_model=16, n_layer=2, d_state=4)
    with torch.no_grad():
        head.norm.running_mean.fill_(0.1)
        head.norm.running_var.fill_(1.5)
    return head.eval()


@pytest.mark.parametrize("published", [True, False])
def test_padded_batch_scores_as_alone(published):
    head = _small()
    head.published_final_norm = published
    assert padding_gap(head, seeded_input((3, 30, 12), 4), [30, 17, 5]) < 1e-5


def test_trains():
    torch.manual_seed(2)
    head = MambaBackend(embed_dim=12, d_model=16, n_layer=1, d_state=4, dropout=0.0).train()
    losses = train_losses(head, *toy_task(seed=11))
    assert losses[-1] < 0.5 * losses[0]
