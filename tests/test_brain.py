"""SSLBrain end to end on a toy corpus with the tiny model (seconds on a CPU)."""
import os
import re

import pandas as pd
import pytest
import torch

from adf.models.classifier import build_classifier
from adf.train import main as train_main
from tests.synth import ROOT, tiny_train_argv, toy_corpus

HPARAMS = str(ROOT / "recipes" / "posttrain" / "hparams" / "tiny.yaml")


def _run(root, out, *extra):
    return train_main(tiny_train_argv(root, out, "--max_batch_seconds", 8, "--warmup_steps", 5, "--lr", 0.003,
                                      *extra))


def _log_lines(out):
    return (out / "train_log.txt").read_text().strip().splitlines()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    toy_corpus(root, (32, 10, 10))
    out = root / "exp"
    _run(root, out, "--number_of_epochs", 4, "--valid_step", 3)
    return root, out


def test_learns_validates_mid_epoch_and_exports_best(trained):
    root, out = trained
    lines = _log_lines(out)
    eers = [float(m) for m in re.findall(r"valid EER: ([0-9.e+-]+)", "\n".join(lines))]
    losses = [float(m) for m in re.findall(r"valid loss: ([0-9.e+-]+)", "\n".join(lines))]
    assert len(eers) > 4, "validation every 3 steps should add lines beyond one per epoch"
    assert min(eers) <= 20.0, f"tiny model should separate tone from noise, EERs {eers}"
    assert losses[-1] < losses[0]
    assert (out / "save" / "best_model.safetensors").exists()
    assert (out / "hyperparams.yaml").exists()
    assert any((out / "tensorboard").iterdir())


def test_best_export_matches_lowest_eer_checkpoint(trained):
    from speechbrain.utils.checkpoints import Checkpointer

    root, out = trained
    from adf.checkpoints import load_model

    ckpt = Checkpointer(out / "save").find_checkpoint(min_key="EER")
    kept = torch.load(os.path.join(ckpt.path, "model.ckpt"), weights_only=True)
    exported = load_model(out / "save" / "best_model.safetensors", model_name="tiny").state_dict()
    for k, v in exported.items():
        assert torch.equal(v, kept[k]), k


def test_resume_continues_from_the_experiment_folder(trained):
    root, out = trained
    before = _log_lines(out)
    _run(root, out, "--number_of_epochs", 5, "--valid_step", 3)
    after = _log_lines(out)
    new = after[len(before):]
    assert new and all(line.startswith("epoch: 5") for line in new), new
    steps = [int(m) for m in re.findall(r"optimizer_step: (\d+)", "\n".join(after))]
    assert steps == sorted(steps)


def test_inference_and_analysis_modes_write_scores_and_embeddings(trained):
    import numpy as np

    root, out = trained
    _run(root, out, "--mode", "analysis")
    scores = pd.read_csv(out / "scores" / "test.csv")
    test = pd.read_csv(root / "data" / "test.csv")
    assert sorted(scores["id"]) == sorted(test["ID"])
    emb = np.load(out / "scores" / "test.emb.npy")
    assert emb.shape == (len(test), build_classifier("tiny").embed_dim)


def test_ocsoftmax_option_trains_its_center_and_keeps_a_scoreable_head(tmp_path):
    from speechbrain.utils.checkpoints import Checkpointer

    toy_corpus(tmp_path, (16, 6, 4))
    out = tmp_path / "oc"
    _run(tmp_path, out, "--number_of_epochs", 1, "--loss", "ocsoftmax")
    ckpt = Checkpointer(out / "save").find_checkpoint(min_key="EER")
    center = torch.load(os.path.join(ckpt.path, "oc_softmax.ckpt"), weights_only=True)["center"]
    from adf.models.backbones import backbone_config

    assert center.shape == (backbone_config("tiny")["encoder_embed_dim"],)
    assert (out / "save" / "best_model.safetensors").exists()
    assert re.search(r"valid EER: [0-9.]+", (out / "train_log.txt").read_text())
    with pytest.raises(SystemExit, match="unknown loss"):
        _run(tmp_path, tmp_path / "bad", "--loss", "hinge")


@pytest.mark.parametrize("split", ["train", "valid"])
def test_a_stage_with_no_readable_audio_stops_with_the_reason(tmp_path, split):
    """Skipping unreadable files must not become training on nothing (a loss of 0
    and a 'best' model): when every file of a split is missing, train.py stops."""
    root = tmp_path / "toy"
    toy_corpus(root, (8, 4, 4))
    for path in (root / "audio").glob(f"{split}_*.wav"):
        path.unlink()
    with pytest.raises(SystemExit, match=rf"^{split}: none of the \d+ batches could be read.*--data_folder"):
        _run(root, tmp_path / "exp", "--number_of_epochs", 1)
    assert not (tmp_path / "exp" / "save" / "best_model.safetensors").exists()


def test_recipes_step_with_fused_adamw_equal_to_the_plain_one():
    """Every recipe's optimiser is AdamW with `fused: !ref <fused_optimizer>` (one
    kernel per step: 1.7x (w2v_small) to 9x (mms_300m) faster steps on this CPU,
    bench/train.py); its updates match torch's default AdamW."""
    from glob import glob

    from hyperpyyaml import load_hyperpyyaml

    from adf.hparams import read_chain

    trained = 0
    for path in glob(os.path.join(os.path.dirname(HPARAMS), "*.yaml")):
        text = open(read_chain(path).root, encoding="utf-8").read()  # a model file's base holds the optimiser
        if "opt_class:" not in text:  # fitted in one pass (stats_trees): no optimiser
            assert "adf.models.statistics_trees" in text, path
            continue
        trained += 1
        assert "fused_optimizer: true" in text and "fused: !ref <fused_optimizer>" in text, path
    assert trained >= 10
    hparams = load_hyperpyyaml(open(HPARAMS, encoding="utf-8").read(), {"lr": 1e-3})
    torch.manual_seed(0)
    fused_model, plain_model = build_classifier("tiny"), build_classifier("tiny")
    plain_model.load_state_dict(fused_model.state_dict())
    fused = hparams["opt_class"](fused_model.parameters())
    assert fused.defaults["fused"] is True
    plain = torch.optim.AdamW(plain_model.parameters(), lr=1e-3, weight_decay=0.01, eps=1e-6, foreach=False)
    start = {k: v.clone() for k, v in fused_model.state_dict().items()}
    wav = torch.randn(2, 8000, generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        for model, opt in ((fused_model, fused), (plain_model, plain)):
            opt.zero_grad()
            model(wav).logsumexp(dim=1).sum().backward()
            opt.step()
    got, want = fused_model.state_dict(), plain_model.state_dict()
    assert any(not torch.equal(got[k], start[k]) for k in got)  # the steps moved the weights
    # Attention is invariant to the key projection's bias (it shifts every score of a
    # query equally), so its gradient is zero up to rounding, which Adam's division by
    # sqrt(v) turns into lr-sized steps that differ with the kernels' rounding (AVX2).
    compared = [k for k in got if not k.endswith("attention.k_proj.bias")]
    assert all(torch.allclose(got[k], want[k], rtol=1e-5, atol=1e-6) for k in compared), \
        [k for k in compared if not torch.allclose(got[k], want[k], rtol=1e-5, atol=1e-6)]
