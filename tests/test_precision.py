"""Precision that fits the machine: `auto`, the bf16 probe and its cache, the
warning for emulated bf16, int8 dynamic quantization, and their use by detect
and training."""
import json
import math
import os
import statistics

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from adf import precision as P
from adf.checkpoints import save_checkpoint
from adf.cli import main
from adf.models.classifier import build_classifier


@pytest.fixture(autouse=True)
def fresh_probe(monkeypatch, tmp_path):
    """Each test has its own probe cache folder and no remembered results."""
    monkeypatch.setenv("ADF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(P, "_probe_memo", {})
    monkeypatch.setattr(P, "_warned", set())


def fake_cpu(monkeypatch, flags, fp32, bf16):
    monkeypatch.setattr(P, "cpu_bf16_flags", lambda: flags)
    monkeypatch.setattr(P, "_gemm_gflops", lambda dtype, **_: bf16 if dtype == torch.bfloat16 else fp32)


@pytest.mark.parametrize("flags, fp32, bf16, expected", [
    (False, 90.0, 1.3, "fp32"),   # AVX2 only: no bf16 instructions at all
    (True, 67.0, 2.2, "fp32"),    # flags claim bf16 but the kernels emulate it (capped ISA)
    (True, 125.0, 403.0, "bf16"),  # AVX-512 BF16
    (True, 100.0, 1000.0, "bf16"),  # AMX
])
def test_auto_on_the_cpu_follows_the_measured_speed(monkeypatch, flags, fp32, bf16, expected):
    fake_cpu(monkeypatch, flags, fp32, bf16)
    choice = P.resolve("auto", "cpu")
    assert choice.precision == expected
    assert choice.reason.startswith("auto: ") and ("no native" in choice.reason) == (expected == "fp32")


def test_explicit_bf16_on_an_emulating_cpu_warns_once_with_the_slowdown(monkeypatch, capsys):
    fake_cpu(monkeypatch, True, 90.0, 1.5)
    assert P.resolve("bf16", "cpu").precision == "bf16"  # runs as asked
    P.resolve("bf16", "cpu")
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "60x slower than fp32" in err and "1.5 vs 90.0 GFLOP/s" in err


def test_explicit_bf16_on_a_native_cpu_is_silent(monkeypatch, capsys):
    fake_cpu(monkeypatch, True, 100.0, 400.0)
    assert P.resolve("bf16", "cpu") == P.Choice("bf16", "as asked")
    assert capsys.readouterr().err == ""


def test_impossible_combinations_are_refused():
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        P.resolve("fp16", "cpu")
    with pytest.raises(ValueError, match="CPU only"):
        P.resolve("int8", "cuda")
    with pytest.raises(ValueError, match="unknown precision 'int8'"):
        P.resolve("int8", "cpu", purpose="training")
    with pytest.raises(ValueError, match="unknown precision 'fp64'"):
        P.resolve("fp64", "cpu")


def test_probe_is_cached_per_machine_set_up(monkeypatch, tmp_path):
    monkeypatch.setattr(P, "cpu_bf16_flags", lambda: True)
    calls = []
    monkeypatch.setattr(P, "_gemm_gflops", lambda dtype, **_: calls.append(dtype) or 50.0)
    P.cpu_gemm_gflops()
    assert len(calls) == 2
    cache = json.loads((tmp_path / "cache" / "precision.json").read_text())
    assert list(cache.values()) == [{"fp32": 50.0, "bf16": 50.0}]
    monkeypatch.setattr(P, "_probe_memo", {})  # a new process: reads the file, probes nothing
    assert P.cpu_gemm_gflops() == {"fp32": 50.0, "bf16": 50.0} and len(calls) == 2
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", os.environ.get("ONEDNN_MAX_CPU_ISA", "") + "_TEST")  # another set-up: probed again
    P.cpu_gemm_gflops()
    assert len(calls) == 4 and len(json.loads((tmp_path / "cache" / "precision.json").read_text())) == 2


def test_a_corrupt_cache_is_probed_again(monkeypatch, tmp_path):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "precision.json").write_text("{not json")
    monkeypatch.setattr(P, "_gemm_gflops", lambda dtype, **_: 10.0)
    assert P.cpu_gemm_gflops() == {"fp32": 10.0, "bf16": 10.0}


def test_real_probe_measures_both_dtypes():
    for dtype in (torch.float32, torch.bfloat16):
        speed = P._gemm_gflops(dtype, size=32, min_seconds=0.001)
        assert math.isfinite(speed) and speed > 0


@pytest.fixture
def tiny_ckpt(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "m.safetensors"
    save_checkpoint(build_classifier("tiny"), path)
    rng = np.random.default_rng(1)
    clips = []
    for i, seconds in enumerate((0.7, 1.3, 2.0, 1.0, 1.6, 0.9)):
        clip = tmp_path / f"c{i}.wav"
        sf.write(clip, (0.1 * rng.standard_normal(int(seconds * 16000))).astype("float32"), 16000)
        clips.append(clip)
    return path, clips


def test_int8_quantizes_the_transformer_and_agrees_with_fp32(tiny_ckpt):
    from adf.inference import Item, load_detector, score_items

    path, clips = tiny_ckpt
    items = [Item(c.stem, str(c)) for c in clips]
    fp32, _ = load_detector(path, precision="fp32")
    int8, choice = load_detector(path, precision="int8")
    assert choice.precision == "int8"
    layer = int8.backbone.encoder.transformer.layers[0]
    assert type(layer.feed_forward.intermediate_dense).__module__.startswith("torch.ao.nn.quantized")
    assert isinstance(int8.proj_fc, torch.nn.Linear)  # the head stays fp32
    ref = {s.item.id: s.prob_real for s in score_items(fp32, items, batch_size=3, precision="fp32")}
    got = {s.item.id: s.prob_real for s in score_items(int8, items, batch_size=3, precision="int8")}
    assert set(got) == set(ref)
    assert statistics.median(abs(got[k] - ref[k]) for k in ref) <= 0.01
    assert any(got[k] != ref[k] for k in ref)  # quantized for real


def test_detect_says_which_precision_and_why(tiny_ckpt, tmp_path, monkeypatch, capsys):
    path, clips = tiny_ckpt
    fake_cpu(monkeypatch, False, 90.0, 1.3)
    assert main(["detect", "--ckpt", str(path), "-o", str(tmp_path / "a.csv"), "--workers", "0",
                 str(clips[0])]) == 0
    assert "in fp32 [auto: no native bf16 (" in capsys.readouterr().out
    assert main(["detect", "--ckpt", str(path), "-o", str(tmp_path / "b.csv"), "--workers", "0",
                 "--precision", "fp32", str(clips[0])]) == 0
    # auto on a CPU without native bf16 is fp32: the same numbers
    assert pd.read_csv(tmp_path / "a.csv")["logit_real"].tolist() == pd.read_csv(tmp_path / "b.csv")["logit_real"].tolist()
    fake_cpu(monkeypatch, True, 100.0, 500.0)
    assert main(["detect", "--ckpt", str(path), "-o", str(tmp_path / "c.csv"), "--workers", "0",
                 str(clips[0])]) == 0
    assert "in bf16 [auto: native bf16 (" in capsys.readouterr().out


def test_training_resolves_auto_from_hparams_and_command_line(monkeypatch):
    from speechbrain.utils.run_opts import RunOptions

    from adf.train import _resolve_precisions, _take_auto_precision

    argv, auto = _take_auto_precision(["h.yaml", "--precision", "auto", "--lr", "1", "--eval_precision=fp32"])
    assert argv == ["h.yaml", "--lr", "1", "--eval_precision=fp32"] and auto == {"precision"}
    fake_cpu(monkeypatch, True, 100.0, 500.0)
    hparams = {"precision": "auto"}
    opts = _resolve_precisions(hparams, RunOptions(device="cpu"))
    assert opts.precision == "bf16" and hparams["precision"] == "bf16" and opts.eval_precision == "fp32"
    fake_cpu(monkeypatch, False, 100.0, 1.0)
    opts = _resolve_precisions({"precision": "bf16"}, RunOptions(device="cpu", precision="auto",
                                                                  overridden_args={"precision"}))
    assert opts.precision == "fp32"  # the command line wins over the hparams
