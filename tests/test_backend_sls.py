"""SLS back-end: the published head's outputs on 64,600-sample input, any length, padding."""
from __future__ import annotations

import torch

from adf.checkpoints.published import load_published_backend
from adf.models.backends.sls import SLSBackend
from backend_checks import padding_gap
from published_layouts import assert_matches_published, published_load_error, seeded_input, seeded_state_dict, sls_published_shapes

# The published `Model` (SLSforASVspoof-2021-DF, model.py) with fairseq stubbed out to
# return these layer results (3 layers of 201 frames x 1024: 64,600 samples of XLS-R),
# head weights seeded_state_dict(PUBLISHED_SHAPES, 1234), eval mode: its log-softmax output.
PUBLISHED_SHAPES = sls_published_shapes()  # 22,847 = (201 // 3) x (1024 // 3) inputs to fc1
PUBLISHED_LOG_PROBS = [[-0.16188526153564453, -1.9007184505462646],
                       [-0.2741281986236572, -1.4280941486358643]]


def _published_head():
    sd = {f"module.{k}": v for k, v in seeded_state_dict(PUBLISHED_SHAPES, 1234).items()}  # DataParallel
    sd["module.ssl_model.model.encoder.layer_norm.weight"] = torch.ones(1024)  # backbone: not the head's
    return load_published_backend(SLSBackend(1024), sd, "sls.pth").eval()


def test_published_checkpoint_gives_the_published_outputs_on_64600_samples():
    assert_matches_published(_published_head(), seeded_input((2, 3, 201, 1024), 99), PUBLISHED_LOG_PROBS, "SLS",
                             log_softmax=True)


def test_published_layout_mismatches_are_listed():
    sd = seeded_state_dict(PUBLISHED_SHAPES, 1)
    sd["fc2.weight"] = sd.pop("fc3.weight")
    sd["fc1.weight"] = sd["fc1.weight"][:, :-1]
    msg = published_load_error(SLSBackend(1024), sd, "sls.pth")
    assert msg.startswith("sls.pth: ")
    assert "1 missing: out.weight" in msg and "1 unexpected: fc2.weight" in msg
    assert "hidden.weight (1024, 22846) vs (1024, 22847) expected" in msg


def _small_head(seed=0):
    torch.manual_seed(seed)
    head = SLSBackend(embed_dim=12, hidden=16)
    with torch.no_grad():
        head.norm.running_mean.fill_(0.1)
        head.norm.running_var.fill_(2.0)
    return head.eval()


def test_any_length_and_padded_batches_score_as_alone():
    head = _small_head()
    feats = seeded_input((3, 4, 260, 12), 5)
    # longer and shorter than 201 frames, and shorter than 67
    assert padding_gap(head, feats, [260, 140, 40]) < 1e-5
    with torch.no_grad():
        assert torch.isfinite(head(feats[:, :, :140], None)).all()


def test_layer_weights_ignore_padding_and_follow_the_published_rule():
    head = _small_head()
    feats = seeded_input((1, 4, 30, 12), 6)
    mask = torch.ones(1, 30, dtype=torch.bool)
    mask[0, 20:] = False
    w = head.layer_weights(feats, mask)
    expected = torch.sigmoid(feats[0, :, :20].mean(dim=1) @ head.layer_score.weight[0] + head.layer_score.bias)
    assert torch.allclose(w[0], expected, atol=1e-6)


def test_trains():
    torch.manual_seed(0)
    head = SLSBackend(embed_dim=12, hidden=16).train()
    feats = seeded_input((4, 3, 201, 12), 7)
    labels = torch.tensor([0, 1, 0, 1])
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        loss = torch.nn.functional.cross_entropy(head(feats, None), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
