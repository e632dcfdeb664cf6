"""GRPO fine-tuning: the loss against hand-computed values, group normalisation, the KL
term, the frozen copies, and a short run on egs_data beside cross-entropy."""
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from adf.grpo import GRPO, group_advantages, grpo_loss, k3_kl
from adf.models.classifier import build_classifier
from tests.synth import ROOT

REPO = str(ROOT)


def test_loss_hand_computed():
    # Utterance 1: pi = (0.25, 0.75), true label real (1), sampled labels (1, 0): rewards (1, 0),
    # advantages (+1, -1) (population std 0.5, so (r - 0.5) / (0.5 + eps_std)).
    # The old policy is (0.5, 0.5): ratios 1.5 and 0.5, clipped to 1.2 and 0.8 (eps 0.2);
    # min(1.5 * 1, 1.2 * 1) = 1.2 and min(0.5 * -1, 0.8 * -1) = -0.8.
    # Utterance 2: pi = (0.8, 0.2) = its old policy (ratio 1), true label fake (0), both samples 0:
    # equal rewards -> advantage 0.
    # Reference (0.5, 0.5) everywhere; k3 = q/p - log(q/p) - 1 with q/p = ref / pi of the sampled label.
    logits = torch.tensor([[0.0, math.log(3)], [math.log(4), 0.0]], requires_grad=True)
    actions = torch.tensor([[1, 0], [0, 0]])
    targets = torch.tensor([1, 0])
    flat = torch.zeros(2, 2)
    beta, eps_std = 0.1, 1e-4
    k3 = lambda r: r - math.log(r) - 1  # noqa: E731
    a = 0.5 / (0.5 + eps_std)
    surrogate = [min(1.5 * a, 1.2 * a), min(0.5 * -a, 0.8 * -a), 0.0, 0.0]
    kl = [k3(0.5 / 0.75), k3(0.5 / 0.25), k3(0.5 / 0.8), k3(0.5 / 0.8)]
    expected = -sum(s - beta * k for s, k in zip(surrogate, kl)) / 4
    old = torch.tensor([[0.0, 0.0], [math.log(4), 0.0]])
    loss, parts = grpo_loss(logits, actions, targets, ref_logits=flat, old_logits=old, clip_eps=0.2,
                            beta=beta, eps_std=eps_std)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert parts["reward"] == pytest.approx(0.75) and parts["kl"] == pytest.approx(sum(kl) / 4, rel=1e-6)
    assert parts["clipped"] == pytest.approx(0.5)

    # On-policy (v2) with beta 0: loss 0 at the point, gradient = -mean(A * grad log pi(a)).
    logits.grad = None
    loss, _ = grpo_loss(logits, actions, targets, beta=0.0, eps_std=eps_std)
    loss.backward()
    # d log softmax(z)_k / dz = onehot(k) - p; utterance 1: +a * (e1 - p) - a * (e0 - p) = a * (e1 - e0)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    assert logits.grad[0].tolist() == pytest.approx([a / 4, -a / 4], rel=1e-6)
    assert logits.grad[1].tolist() == pytest.approx([0.0, 0.0], abs=1e-7)


def test_group_normalisation_is_per_utterance():
    rewards = torch.tensor([[1.0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 1]])
    adv = group_advantages(rewards, eps_std=0.0 + 1e-12)
    std1 = math.sqrt(0.25 * 0.75)
    assert adv[0].tolist() == pytest.approx([0.75 / std1] + [-0.25 / std1] * 3)
    assert adv[1].tolist() == [0.0] * 4  # a unanimous group teaches nothing
    assert adv[2].tolist() == pytest.approx([-1.0, 1.0, -1.0, 1.0])
    assert adv.mean(1).tolist() == pytest.approx([0.0] * 3, abs=1e-6)
    # Each row's advantages do not depend on the other rows (whole-batch normalisation would).
    assert torch.equal(group_advantages(rewards[:1], 1e-12), adv[:1])
    batch_norm = (rewards - rewards.mean()) / rewards.std()
    assert not torch.allclose(batch_norm, adv)


def test_kl_zero_when_policy_is_reference():
    logp = torch.log_softmax(torch.randn(5, 2), -1)
    assert k3_kl(logp, logp).abs().max() == 0
    assert (k3_kl(logp, logp.flip(-1)) >= 0).all()
    torch.manual_seed(0)
    policy = build_classifier("tiny").eval()
    grpo = GRPO(policy, group_size=4, beta=0.5, ref_precision="fp32")
    wavs, lengths = torch.randn(3, 8000), torch.tensor([8000, 6000, 4000])
    logits = policy(wavs, lengths)
    targets = torch.tensor([0, 1, 1])
    _, parts = grpo.loss(logits, targets, wavs, lengths)
    assert parts["kl"] == 0.0
    # There the KL term adds no gradient either: beta 1 and beta 0 give the same one.
    actions = torch.tensor([[0, 1, 1, 0], [1, 1, 0, 1], [0, 0, 0, 1]])
    with_kl = grpo_loss(logits, actions, targets, ref_logits=logits.detach(), beta=1.0)[0]
    without = grpo_loss(logits, actions, targets, beta=0.0)[0]
    g1, = torch.autograd.grad(with_kl, logits, retain_graph=True)
    g0, = torch.autograd.grad(without, logits)
    assert torch.allclose(g1, g0, atol=1e-7) and g0.abs().max() > 0


def test_frozen_copies_precision_and_refresh():
    torch.manual_seed(0)
    policy = build_classifier("tiny")
    v2 = GRPO(policy, group_size=4, refresh_steps=0, ref_precision="bf16")
    assert v2.old is None
    ref = v2.reference
    assert not any(p.requires_grad for p in ref.parameters()) and not ref.training
    assert ref.backbone_dtype == torch.bfloat16 and ref.proj_fc.weight.dtype == torch.float32
    assert policy.backbone_dtype is None or policy.backbone_dtype == torch.float32
    wavs, lengths = torch.randn(2, 8000), torch.tensor([8000, 8000])
    _, parts = v2.loss(policy.eval()(wavs, lengths), torch.tensor([0, 1]), wavs, lengths)
    assert 0 <= parts["kl"] < 1e-3  # bf16 rounding of the reference only
    assert GRPO(policy, beta=0.0).reference is None  # no KL: no reference copy
    v1 = GRPO(policy, group_size=4, refresh_steps=3, beta=0.0)
    with torch.no_grad():
        policy.proj_fc.bias.add_(1.0)
    v1.maybe_refresh(policy, 2)
    assert not torch.equal(v1.old.proj_fc.bias, policy.proj_fc.bias)
    v1.maybe_refresh(policy, 3)
    assert torch.equal(v1.old.proj_fc.bias, policy.proj_fc.bias)
    with pytest.raises(ValueError, match="at least 2"):
        GRPO(policy, group_size=1)


def _egs_subset(tmp_path):
    """A small speaker-disjoint slice of egs_data as train/valid manifests."""
    from adf.cli import main

    assert main(["prepare", "egs", "--jobs", "1", "--no-progress", "-o", str(tmp_path / "egs.csv")]) == 0
    df = pd.read_csv(tmp_path / "egs.csv")
    picks = []
    for split, n in (("train", 12), ("valid", 8)):
        part = df[df["Proportion"] == split]
        picks.append(pd.concat([part[part.Label == "real"].head(n), part[part.Label == "fake"].head(n)]))
    picks[0].to_csv(tmp_path / "train.csv", index=False)
    picks[1].to_csv(tmp_path / "valid.csv", index=False)
    picks[1].to_csv(tmp_path / "test.csv", index=False)


@pytest.mark.slow
def test_short_grpo_run_beside_cross_entropy(tmp_path):
    """A few steps of each method on egs_data clips: both train, log a validation EER, export a model."""
    _egs_subset(tmp_path)
    eers = {}
    for method, extra in (("ce", []), ("grpo", ["--grpo_group_size", "4", "--grpo_refresh_steps", "2"])):
        out = tmp_path / method
        cmd = [sys.executable, os.path.join(REPO, "recipes", "finetune", "train.py"),
               os.path.join(REPO, "recipes", "posttrain", "hparams", "tiny.yaml"),
               "--data_folder", os.path.join(REPO, "egs_data"), "--manifest_folder", str(tmp_path),
               "--output_folder", str(out), "--method", method, "--number_of_epochs", "1",
               "--optimizer_step_limit", "4", "--warmup_steps", "1", "--max_batch_seconds", "8",
               "--noprogressbar", "--device", "cpu", *extra]
        env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        log = (out / "train_log.txt").read_text()
        eers[method] = float(log.split("valid EER: ")[-1].split()[0])
        assert (out / "save" / "best_model.safetensors").exists()
    print("validation EER after 4 steps: " + ", ".join(f"{m} {e:.2f}%" for m, e in eers.items()))
    assert all(0 <= e <= 100 for e in eers.values())
    assert "grpo" in (tmp_path / "grpo" / "hyperparams.yaml").read_text()
    # GRPO refuses a warm-up that outlasts the run (the reference's recipe had one).
    cmd[cmd.index("--warmup_steps") + 1] = "30"
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "warmup_steps (30) must be below optimizer_step_limit (4)" in proc.stderr
