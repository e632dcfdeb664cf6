"""AASIST, AASIST-L, RawNet2 and the SSL + AASIST back-end against the original implementations.

Reference numbers were recorded by running the ORIGINAL code outside this
repository (a throwaway folder; same torch):
clovaai/aasist models/AASIST.py and data_utils.pad (commit a04c986) with the
released AASIST.pth / AASIST-L.pth; the ASVspoof 2021 LA/Baseline-RawNet2
model.py and model_config_RawNet.yaml (asvspoof-challenge/2021, 9b33f5e);
SSL_Anti-spoofing model.py (TakHemlata, 4acaa61) with its fairseq SSL model
replaced by the identity on given features. Inputs: four clips of the earlier
example corpus kept in tests/data/reference_clips (8 kHz), resampled to 16 kHz with torchaudio, cut/tiled with the published
`pad` to 64,600 samples, plus the first and third clip concatenated (85,920
samples, so it is cut). The random-weight models use `seeded_weights` below,
applied to the published state dict (same key names).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from adf.audio import read_audio, resample, to_mono
from adf.input_policy import get_policy, tile_to
from adf.models.aasist import SSLAASISTBackend
from adf.models.registry import build_model
from tests.synth import ROOT

# ADF_TEST_SHARED: where ../shared is when the checkout is elsewhere (e.g. a git worktree)
PRETRAINED = Path(os.environ.get("ADF_TEST_SHARED", ROOT.parent / "shared")) / "pretrained" / "aasist"
EGS_TEST = ROOT / "tests" / "data" / "reference_clips"
CLIPS = ["espeak_it_f5_espeakng_call-fwd-no-ans.flac", "espeak_it_f5_espeakng_conf-invalid.flac",
         "it_IT_f_Menardi_real_screen-callee-options.flac", "it_IT_f_Menardi_real_vm-tomakecall.flac"]
TOL = 1e-4

# logits [spoof, bona fide] of the original code, one row per input (4 clips + concatenation)
REFERENCE = {
    "aasist": [(-0.6541773676872253, -0.38778379559516907), (0.9376463890075684, -1.9847235679626465),
               (-0.033044133335351944, -1.1230933666229248), (-0.22286640107631683, -0.6784183382987976),
               (-0.6148596405982971, -0.5012506246566772)],
    "aasist_l": [(-0.10812219977378845, 0.34089556336402893), (2.0867176055908203, -1.838287591934204),
                 (1.723162055015564, -1.4703166484832764), (1.881099820137024, -1.7428600788116455),
                 (-0.21131403744220734, 0.5158398151397705)],
    "rawnet2": [(-1.0799365043640137, -0.4149354100227356), (-0.7175761461257935, -0.6693007349967957),
                (-0.49319401383399963, -0.9433351755142212), (-0.6448748707771301, -0.7438682913780212),
                (-0.6316324472427368, -0.7586954832077026)],
    "ssl_aasist": [(4.158368110656738, 3.925440788269043), (5.304599285125732, 2.7041819095611572)],
}
FILES = {"aasist": "AASIST.pth", "aasist_l": "AASIST-L.pth"}
needs_weights = pytest.mark.skipif(not (PRETRAINED / "AASIST.pth").is_file(),
                                   reason="released AASIST weights not available (../shared/pretrained/aasist)")


def seeded_weights(state_dict, seed):
    """Deterministic weights for a state dict, by sorted key: batch-norm variances
    1 + 0.1|z|, other 1-D weights 1 + 0.1 z, 1-D biases / means 0.01 z, matrices
    z / sqrt(fan-in); integer buffers unchanged (z ~ N(0, 1) from `seed`)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key in sorted(state_dict):
        t = state_dict[key]
        if not t.is_floating_point():
            out[key] = t.clone()
            continue
        z = torch.randn(t.shape, generator=g)
        if key.endswith("running_var"):
            out[key] = 1 + 0.1 * z.abs()
        elif t.dim() <= 1 and key.endswith("weight"):
            out[key] = 1 + 0.1 * z
        elif t.dim() <= 1:
            out[key] = 0.01 * z
        else:
            out[key] = z / math.sqrt(t[0].numel())
    return out


@pytest.fixture(scope="module")
def inputs():
    """The five 64,600-sample inputs of the reference run (first-64600 policy)."""
    wavs = [resample(to_mono(read_audio(EGS_TEST / c)[0]), 8000) for c in CLIPS]
    wavs.append(torch.cat([wavs[0], wavs[2]]))
    policy = get_policy("first-64600")
    return torch.stack([policy.for_scoring(w) for w in wavs])


def _released(name):
    return torch.load(PRETRAINED / FILES[name], map_location="cpu", weights_only=True)


def test_published_sizes():
    counts = {n: sum(p.numel() for p in build_model(n).parameters()) for n in ("aasist", "aasist_l")}
    assert counts == {"aasist": 297_866, "aasist_l": 85_306}  # as published


@needs_weights
@pytest.mark.parametrize("name", ["aasist", "aasist_l"])
def test_released_weights_give_the_original_logits(name, inputs):
    model = build_model(name).eval()
    model.load_state_dict(_released(name), strict=True)
    rows = [0, 4]  # a tiled clip and the cut concatenation (adf detect checks clips 1 and 3)
    with torch.no_grad():
        got = model(inputs[rows])
    want = torch.tensor([REFERENCE[name][i] for i in rows])
    assert (got - want).abs().max().item() <= TOL


@needs_weights
def test_adf_detect_scores_the_released_checkpoint_as_published(tmp_path):
    from adf.cli import main

    out = tmp_path / "scores.csv"
    clips = [str(EGS_TEST / CLIPS[1]), str(EGS_TEST / CLIPS[3])]
    assert main(["detect", "--ckpt", str(PRETRAINED / "AASIST-L.pth"), "-o", str(out),
                 "--workers", "0", "--precision", "fp32", *clips]) == 0
    import pandas as pd

    df = pd.read_csv(out)
    got = torch.tensor(df[["logit_fake", "logit_real"]].values)
    want = torch.tensor([REFERENCE["aasist_l"][1], REFERENCE["aasist_l"][3]], dtype=torch.float64)
    assert (got - want).abs().max().item() <= TOL


def test_rawnet2_matches_the_challenge_baseline(inputs):
    model = build_model("rawnet2")
    model.load_state_dict(seeded_weights(model.state_dict(), 0), strict=True)
    # batch norm statistics := these inputs' (momentum 1, one training-mode pass), as in the reference run
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(inputs)
        got = model.eval()(inputs)
    assert (got - torch.tensor(REFERENCE["rawnet2"])).abs().max().item() <= TOL
    # logits are the published log-probabilities
    assert torch.allclose(got.exp().sum(dim=1), torch.ones(len(got)))


def test_ssl_aasist_backend_matches_ssl_anti_spoofing():
    backend = SSLAASISTBackend(48)
    backend.load_state_dict(seeded_weights(backend.state_dict(), 1), strict=True)
    feats = torch.randn(2, 30, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = backend.eval()(feats)
    assert (got - torch.tensor(REFERENCE["ssl_aasist"])).abs().max().item() <= TOL


def test_first_64600_policy_tiles_and_cuts():
    policy = get_policy("first-64600")
    short = torch.arange(30000, dtype=torch.float32)
    x = policy.for_scoring(short)
    assert x.shape == (64600,)
    assert torch.equal(x[:30000], short) and torch.equal(x[30000:60000], short)
    assert torch.equal(x[60000:], short[:4600])
    long = torch.arange(100000, dtype=torch.float32)
    assert torch.equal(policy.for_scoring(long), long[:64600])  # no normalisation
    window = policy.for_training(long, torch.Generator().manual_seed(0))
    start = int(window[0])
    assert torch.equal(window, long[start : start + 64600])
    assert torch.equal(tile_to(short, 64600, start=29000)[:1000], short[29000:])
    whole = get_policy("whole").for_scoring(long)
    assert whole.shape == long.shape and abs(float(whole.mean())) < 1e-4
    with pytest.raises(ValueError, match="unknown input policy"):
        get_policy("first-64k")


def test_padding_does_not_change_waveform_or_ssl_aasist_scores():
    torch.manual_seed(0)
    for name, length in (("aasist_l", 2700), ("tiny_aasist", 3000)):
        model = build_model(name).eval()
        a, b = torch.randn(1, length), torch.randn(1, length + 500)
        padded = torch.zeros(2, length + 500)
        padded[0, :length], padded[1] = a[0], b[0]
        with torch.no_grad():
            together = model(padded, torch.tensor([length, length + 500]))
            alone = torch.cat([model(a), model(b)])
        assert torch.allclose(together, alone, atol=1e-5), name


def test_ssl_anti_spoofing_checkpoint_layout_loads_strictly(tmp_path):
    """SSL_Anti-spoofing's layout: the fairseq model under `ssl_model.model.`, the
    AASIST back-end at the top level (seeded random weights; the backbone from
    transformers, renamed to fairseq by an independent helper)."""
    from adf.checkpoints import CheckpointError, load_model
    from hf_reference import hf_to_fairseq, small_pair

    hf, _, overrides = small_pair("w2v_large_like")
    backend = SSLAASISTBackend(32)
    head = seeded_weights(backend.state_dict(), 3)
    layout = {f"ssl_model.model.{k}": v for k, v in hf_to_fairseq(hf.state_dict(), group_norm=False).items()}
    layout.update(head)
    torch.save(layout, tmp_path / "LA_model.pth")
    model = load_model(tmp_path / "LA_model.pth", model_name="w2v_large_aasist", **overrides)
    assert model.input_policy == "first-64600"
    backend.load_state_dict(head)
    wav = 0.1 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        want = backend.eval()(hf(wav).last_hidden_state)
        got = model(wav)
    assert (got - want).abs().max().item() <= TOL
    # saved from DataParallel: same weights under `module.`
    torch.save({f"module.{k}": v for k, v in layout.items()}, tmp_path / "dp.pth")
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "dp.pth", model_name="w2v_large_aasist", **overrides)(wav), got)
    # a missing and a mis-shaped back-end key are named
    del layout["pos_S"]
    layout["LL.weight"] = torch.zeros(128, 31)
    torch.save(layout, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"bad.pth: .*1 missing: backend.pos_S; .*"
                                              r"mis-shaped: backend.LL.weight \(128, 31\) vs \(128, 32\)"):
        load_model(tmp_path / "bad.pth", model_name="w2v_large_aasist", **overrides)


@pytest.mark.parametrize("name", ["aasist", "aasist_l", "rawnet2", "tiny_aasist", "xlsr_2b_aasist"])
def test_architecture_is_inferred_from_shapes(name):
    from adf.checkpoints import infer_model_name
    from adf.models.classifier import build_on_meta

    assert infer_model_name(build_on_meta(name).state_dict()) == name


def test_own_checkpoint_records_the_input_policy(tmp_path):
    from adf.checkpoints import load_model, read_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = build_model("aasist_l").eval()
    save_checkpoint(model, tmp_path / "a.safetensors")
    assert read_checkpoint(tmp_path / "a.safetensors").input_policy == "first-64600"
    loaded = load_model(tmp_path / "a.safetensors")
    assert loaded.name == "aasist_l" and loaded.input_policy == "first-64600"
    wav = torch.randn(1, 2500)
    with torch.no_grad():
        assert torch.allclose(loaded(wav), model(wav), atol=1e-6)
    tiny = build_model("tiny", input_policy="first-64600")
    save_checkpoint(tiny, tmp_path / "t.safetensors")
    assert load_model(tmp_path / "t.safetensors").input_policy == "first-64600"
    assert load_model(tmp_path / "t.safetensors", input_policy="whole").input_policy == "whole"


def test_aasist_l_recipe_trains_and_scores_with_its_input_policy(tmp_path):
    """`python train.py hparams/aasist_l.yaml` end to end on a toy corpus (a short
    fixed input keeps it fast); the exported model records the policy it was trained with."""
    from adf.checkpoints import read_checkpoint
    from adf.train import main as train_main
    from tests.synth import toy_corpus

    root = tmp_path / "toy"
    toy_corpus(root, (8, 4, 4))
    out = tmp_path / "exp"
    common = [str(ROOT / "recipes" / "posttrain" / "hparams" / "aasist_l.yaml"), "--data_folder", str(root),
              "--manifest_folder", str(root / "data"), "--output_folder", str(out), "--noprogressbar",
              "--input_policy", "first-4000", "--max_batch_size", "4", "--number_of_epochs", "1"]
    assert train_main(common) == 0
    assert "valid EER" in (out / "train_log.txt").read_text()
    ckpt = read_checkpoint(out / "save" / "best_model.safetensors")
    assert (ckpt.model_name, ckpt.input_policy) == ("aasist_l", "first-4000")
    assert train_main(common + ["--mode", "inference"]) == 0
    import pandas as pd

    assert len(pd.read_csv(out / "scores" / "test.csv")) == 4


def test_unpadded_batches_reach_an_unmaskable_backend_whole():
    """Fixed-length training batches go through the AASIST back-end in one call (its
    batch norm sees the batch, as published); padded ones one utterance at a time."""
    model = build_model("tiny_aasist").train()
    calls = []
    model.backend.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    wav = torch.randn(3, 4000)
    model(wav, torch.tensor([4000, 4000, 4000]))
    assert calls == [3]
    calls.clear()
    model(wav, torch.tensor([4000, 3500, 4000]))
    assert calls == [1, 1, 1]
