"""`adf models` (parameter counts checked against transformers) and the OC-softmax loss."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from adf.models.backbones import BACKBONES
from adf.models.classifier import build_classifier
from adf.models.listing import parameter_counts, table_rows
from adf.models.losses import OCSoftmax
from hf_reference import full_size_on_meta
from tests.synth import ROOT


@pytest.mark.parametrize("name", [n for n in BACKBONES if n != "tiny"])
def test_backbone_parameter_counts_match_transformers(name):
    cfg = BACKBONES[name][1]
    hf = full_size_on_meta(cfg, name)
    # transformers adds the pre-training mask embedding (one vector) to the inference network
    expected = sum(p.numel() for n, p in hf.named_parameters() if n != "masked_spec_embed")
    backbone, head = parameter_counts(name)
    assert backbone == expected
    assert head == cfg["encoder_embed_dim"] * 2 + 2


def test_counts_agree_with_the_published_model_sizes():
    millions = {r["name"]: r["backbone"] / 1e6 for r in table_rows()}
    assert 94 < millions["w2v_small"] < 96  # "95M" (wav2vec 2.0 BASE)
    assert 310 < millions["mms_300m"] < 320  # "300M" / 317M
    assert 950 < millions["xlsr_1b"] < 970  # "1B" / 965M
    assert 2100 < millions["xlsr_2b"] < 2200  # "2B" / 2.16B
    assert 310 < millions["unispeech_sat"] < 320  # UniSpeech-SAT Large "317M"
    assert 310 < millions["wavlm_large"] < 320  # WavLM Large "316.62M"


def test_adf_models_cli_lists_every_name(capsys):
    from adf.cli import main

    assert main(["models", "--csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "name,paper,dim,layers,backbone_params,head_params,input"
    rows = {line.split(",")[0]: line.split(",") for line in out[1:]}
    assert list(rows)[: len(BACKBONES)] == list(BACKBONES)
    assert {"aasist", "aasist_l", "rawnet2", "tiny_aasist", "xlsr_2b_aasist"} <= set(rows)
    assert rows["xlsr_2b"][1:4] == ["XLS-R-2B", "1920", "48"]
    assert int(rows["tiny"][4]) == parameter_counts("tiny")[0]
    table = subprocess.run([sys.executable, "-m", "adf", "models"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout
    assert "HuBERT-XL" in table and "2,159,257,728" in table


# --- OC-softmax ---------------------------------------------------------------------------

def _softplus(x):
    return math.log1p(math.exp(x))


def test_oc_softmax_matches_hand_computed_values():
    oc = OCSoftmax(2, margin_real=0.9, margin_fake=0.2, scale=20.0)
    with torch.no_grad():
        oc.center.copy_(torch.tensor([2.0, 0.0]))  # the norm of the centre must not matter
    emb = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, -5.0]])  # cosines 0.6, 1.0, 0.0
    labels = torch.tensor([1, 0, 0])  # real, fake, fake
    loss, score = oc(emb, labels)
    assert torch.allclose(score, torch.tensor([0.6, 1.0, 0.0]))
    expected = (_softplus(20 * (0.9 - 0.6)) + _softplus(20 * (1.0 - 0.2)) + _softplus(20 * (0.0 - 0.2))) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert torch.equal(oc.score(emb), score)


def test_oc_softmax_margins_and_scale_are_options():
    oc = OCSoftmax(2, margin_real=0.5, margin_fake=-0.3, scale=4.0)
    with torch.no_grad():
        oc.center.copy_(torch.tensor([0.0, 1.0]))
    loss, _ = oc(torch.tensor([[1.0, 1.0], [1.0, 1.0]]), torch.tensor([1, 0]))
    c = 1 / math.sqrt(2)
    expected = (_softplus(4 * (0.5 - c)) + _softplus(4 * (c + 0.3))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError):
        OCSoftmax(2, margin_real=0.2, margin_fake=0.5)


def test_oc_softmax_training_separates_real_from_fake():
    torch.manual_seed(0)
    real = torch.randn(32, 8) + torch.tensor([3.0] + [0.0] * 7)
    fake = torch.randn(32, 8) - torch.tensor([3.0] + [0.0] * 7)
    emb, labels = torch.cat([real, fake]), torch.cat([torch.ones(32), torch.zeros(32)]).long()
    oc = OCSoftmax(8)
    opt = torch.optim.SGD(oc.parameters(), lr=0.1)
    first = None
    for _ in range(50):
        loss, score = oc(emb, labels)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first
    assert score[:32].min() > score[32:].max()  # higher = real


@pytest.mark.parametrize("train", [False, True])
def test_encoder_path_equals_torchaudios_encoder(train):
    """SSLClassifier._encode (no host sync) computes exactly torchaudio's Encoder.forward,
    with and without padding, in eval and training mode (same dropout draws)."""
    torch.manual_seed(0)
    model = build_classifier("tiny").train(train)
    feats = torch.randn(3, 40, model.backbone.encoder.feature_projection.layer_norm.normalized_shape[0])
    lengths = torch.tensor([40, 31, 7])
    for args in ((feats, lengths), (feats, None)):
        torch.manual_seed(1)
        ours = model._encode(*args)
        torch.manual_seed(1)
        theirs = model.backbone.encoder(*args)
        assert torch.equal(ours, theirs)
