"""Conformer + TCM back-end: the published model's outputs, key layout, padding."""
from __future__ import annotations

import math

import pytest
import torch

from adf.checkpoints.published import load_published_backend
from adf.models.backends.tcm import TCMBackend, sinusoidal_table
from backend_checks import padding_gap, toy_task, train_losses
from published_layouts import assert_matches_published, published_load_error, seeded_input, seeded_state_dict, tcm_published_shapes



# tcm_add's `Model` (emb 144, 2 encoders, 4 heads, kernel 31) with fairseq stubbed out to return
# seeded_input((2, 1, 201, 1024), 77)[:, 0] as XLS-R's last layer, weights
# seeded_state_dict(tcm_published_shapes(), 4321) with the position table put back to its own
# (a fixed sinusoid), eval mode: its logits.
PUBLISHED_LOGITS = [[0.12664306163787842, -0.006849315017461777],
                    [0.1301555335521698, -0.005310196429491043]]


def _published_checkpoint():
    sd = seeded_state_dict(tcm_published_shapes(), 4321)
    sd["conformer.positional_emb"] = sinusoidal_table(10000, 144)[None]  # == the published table, bit for bit
    sd["ssl_model.model.post_extract_proj.weight"] = torch.zeros(1024, 512)  # the backbone's: not loaded here
    return sd


def test_position_table_is_the_published_formula():
    table = sinusoidal_table(10000, 144)
    for p, i in [(0, 0), (0, 1), (1, 2), (200, 7), (9999, 143), (5000, 100)]:
        angle = p / 10000 ** (2 * (i // 2) / 144)
        ref = math.sin(angle) if i % 2 == 0 else math.cos(angle)
        assert abs(table[p, i].item() - ref) < 2e-5 * max(1.0, angle / 100)


def test_published_checkpoint_gives_the_published_outputs():
    head = load_published_backend(TCMBackend(1024, n_encoders=2), _published_checkpoint(), "tcm.pth").eval()
    assert_matches_published(head, seeded_input((2, 1, 201, 1024), 77)[:, 0], PUBLISHED_LOGITS, "TCM")


def test_published_layout_mismatches_are_listed():
    sd = _published_checkpoint()
    sd["conformer.encoder_blocks.1.conv.net.4.conv.weight"] = torch.zeros(288, 1, 15)
    sd["conformer.encoder_blocks.2.post_norm.weight"] = torch.zeros(144)
    del sd["conformer.class_token"]
    msg = published_load_error(TCMBackend(1024, n_encoders=2), sd, "tcm.pth")
    assert "1 missing: class_token" in msg
    assert "1 unexpected: blocks.2.post_norm.weight" in msg
    assert "blocks.1.conv.depthwise.weight (288, 1, 15) vs (288, 1, 31) expected" in msg


def _small(seed=0, kernel=5):
    torch.manual_seed(seed)
    head = TCMBackend(embed_dim=12, emb_size=16, heads=4, n_encoders=2, kernel_size=kernel, positions=50)
    with torch.no_grad():  # non-trivial running statistics
        for m in head.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return head.eval()


@pytest.mark.parametrize("kernel", [5, 4])
def test_padded_batch_scores_as_alone(kernel):
    head = _small(kernel=kernel)
    assert padding_gap(head, seeded_input((3, 40, 12), 8), [40, 23, 9]) < 1e-5


def test_longer_than_the_position_table():
    head = _small()
    feats = seeded_input((1, 80, 12), 9)  # table holds 50 rows
    with torch.no_grad():
        out = head(feats)
    assert torch.isfinite(out).all()
    assert torch.allclose(head._positions(80, "cpu"), sinusoidal_table(80, 16))


def test_trains():
    torch.manual_seed(1)
    head = TCMBackend(embed_dim=12, emb_size=16, heads=4, n_encoders=1, kernel_size=5).train()
    losses = train_losses(head, *toy_task())
    assert losses[-1] < 0.5 * losses[0]
    assert not head.positional.requires_grad
