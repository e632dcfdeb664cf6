"""Batching and padding never change a system's scores, end to end (bench/systems.py's check).

Every system of issue 12 (test-sized SSL backbone for the SSL back-ends) scores
its policy's inputs alone and in one batch, and clips of different lengths
alone and as one batch whose padding is filled with noise; the logits must
agree to fp32 rounding.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.systems import batching_gaps, build, model_inputs, profile

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = ["tiny", "tiny_aasist", "tiny_sls", "tiny_tcm", "tiny_mamba", "tiny_vib", "aasist", "aasist_l", "rawnet2"]


@pytest.mark.parametrize("name", SYSTEMS)
def test_batching_and_padding_do_not_change_scores(name):
    model = build(name)
    wavs = model_inputs(model, 2, seed=1, low=1.0, high=3.0)
    batched, padded = batching_gaps(model, wavs, batch_size=2)
    assert batched < 1e-4 and padded < 1e-4, (batched, padded)


def test_the_check_catches_a_model_whose_scores_depend_on_its_batch_mates():
    """A model that normalises over the batch (BatchNorm left in training mode) fails the check."""
    model = build("aasist_l").train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    wavs = model_inputs(model, 2, seed=1, low=1.0, high=3.0)
    batched, _ = batching_gaps(model, wavs, batch_size=2)
    assert batched > 1e-3


def test_profile_names_the_parts_and_they_fit_in_the_total():
    total, shares = profile(build("tiny_mamba"), model_inputs(build("tiny_mamba"), 1, seed=1, low=1.0, high=1.5))
    assert total > 0
    assert {"front-end (SSL backbone)", "back-end", "selective scan"} <= set(shares)
    # the scan runs inside the back-end, which runs inside the whole pass
    assert shares["selective scan"] <= shares["back-end"] <= 1.0
    assert shares["front-end (SSL backbone)"] + shares["back-end"] <= 1.0 + 1e-6


def test_systems_bench_smoke(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "OUT": str(tmp_path), "PYTHONPATH": str(ROOT),
           **{k: os.environ[k] for k in ("OMP_NUM_THREADS", "ADF_CACHE_DIR") if k in os.environ}}
    run = subprocess.run([sys.executable, "bench/systems.py", "--systems", "tiny_aasist", "aasist_l", "--clips", "2",
                          "--repeats", "1", "--batch-size", "2"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()]
    infer = {(r["model"], r["batch"]) for r in lines if r["kind"] == "systems-infer"}
    assert infer == {("tiny_aasist", 1), ("tiny_aasist", 2), ("aasist_l", 1), ("aasist_l", 2)}
    assert all(r["x_realtime"] > 0 and r["rtf"] == pytest.approx(1 / r["x_realtime"])
               for r in lines if r["kind"] == "systems-infer")
    # fixed-input systems: every clip is 64,600 samples (4.04 s)
    assert all(r["audio_s"] == pytest.approx(2 * 64600 / 16000) for r in lines if r["kind"] == "systems-infer")
    agree = {r["model"]: r for r in lines if r["kind"] == "systems-agree"}
    assert set(agree) == {"tiny_aasist", "aasist_l"}
    assert all(max(r["batched_vs_alone"], r["padded_vs_alone"]) < 1e-4 for r in agree.values())
    parts = {(r["model"], r["part"]) for r in lines if r["kind"] == "systems-profile"}
    assert {("aasist_l", "graph_attention"), ("aasist_l", "sinc_filterbank"),
            ("tiny_aasist", "front-end_(SSL_backbone)"), ("tiny_aasist", "graph_attention")} <= parts


def test_bench_stops_when_batching_changes_a_score(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "bench/systems.py", "--systems", "tiny", "--clips", "2",
                          "--repeats", "1", "--batch-size", "2", "--tolerance", "-1"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode != 0 and "batching/padding changed a logit" in run.stderr
