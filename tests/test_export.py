"""`adf export DIR --ckpt CKPT`: a Hub-ready folder that `--ckpt DIR` loads back bit for bit."""
import hashlib
import json
import os

import pandas as pd
import pytest
import soundfile as sf
import torch

from adf.checkpoints import CheckpointError, load_model, read_checkpoint, save_checkpoint
from adf.cli import main
from hub_cache import add_snapshot, use_offline_cache


def export(*args):
    return main(["export", *map(str, args)])


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def results(tmp_path):
    path = tmp_path / "exp" / "results.csv"  # as the evaluate recipe's stage 3 writes it
    path.parent.mkdir()
    path.write_text("model,EGS,ITW,Pooled\ntiny,12.3456,,20.5\n")
    return path


def test_folder_loads_back_bit_exactly(ckpt, tmp_path, results, capsys):
    out = tmp_path / "hub_ready"
    assert export(out, "--ckpt", ckpt, "--metrics", results.parent, "--repo", "me/tiny-detector") == 0
    assert sorted(os.listdir(out)) == ["README.md", "config.json", "model.safetensors"]
    assert "tiny (656,210 parameters, input whole)" in capsys.readouterr().out
    # the same tensors, and the same model
    assert same_weights(read_checkpoint(out).state_dict, read_checkpoint(ckpt).state_dict)
    assert same_weights(load_model(out).state_dict(), load_model(ckpt).state_dict())
    config = json.loads((out / "config.json").read_text())
    weights = (out / "model.safetensors").read_bytes()
    assert config["weights"] == {"file": "model.safetensors", "sha256": hashlib.sha256(weights).hexdigest(),
                                 "bytes": len(weights)}
    assert config["architecture"]["model_name"] == "tiny" and config["architecture"]["backend"] == "mean"
    assert config["architecture"]["backbone_config"]["encoder_embed_dim"] == 128
    assert config["input_policy"]["name"] == "whole" and config["input_policy"]["layer_norm"] is True
    assert config["logits"] == ["fake", "real"]
    assert config["parameters"] == sum(p.numel() for p in load_model(ckpt).parameters())
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: adf\n")
    assert "adf detect --ckpt me/tiny-detector" in card and 'Detector.from_pretrained("me/tiny-detector")' in card
    assert "| model | EGS | ITW | Pooled |" in card and "| tiny | 12.35 | - | 20.50 |" in card
    assert config["weights"]["sha256"] in card


def test_detect_scores_the_folder_as_the_checkpoint(ckpt, tmp_path):
    out = tmp_path / "hub_ready"
    assert export(out, "--ckpt", ckpt) == 0
    clip = tmp_path / "clip.wav"
    sf.write(clip, torch.randn(12000, generator=torch.Generator().manual_seed(1)).numpy() * 0.1, 16000)
    rows = {}
    for name, source in (("ckpt", ckpt), ("folder", out)):
        assert main(["detect", "--ckpt", str(source), "-o", str(tmp_path / f"{name}.csv"), "--precision", "fp32",
                     "--workers", "0", str(clip)]) == 0
        rows[name] = pd.read_csv(tmp_path / f"{name}.csv", dtype=str)
    assert rows["folder"].equals(rows["ckpt"])


def test_fixed_input_model_keeps_its_policy(tmp_path):
    from adf.models.registry import build_model

    torch.manual_seed(0)
    source = tmp_path / "rawnet2.safetensors"
    save_checkpoint(build_model("rawnet2"), source)
    out = tmp_path / "exported"
    assert export(out, "--ckpt", source) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["input_policy"]["name"] == "first-64600" and config["input_policy"]["samples"] == 64600
    assert "model_config" in config["architecture"]
    assert load_model(out).input_policy == "first-64600"
    assert same_weights(load_model(out).state_dict(), load_model(source).state_dict())


def test_damaged_export_is_refused(ckpt, tmp_path):
    out = tmp_path / "hub_ready"
    assert export(out, "--ckpt", ckpt) == 0
    weights = out / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01  # a weight changes, the file stays valid safetensors
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="differs from the .* that .*config.json records"):
        load_model(out)


def test_errors(ckpt, tmp_path, capsys):
    out = tmp_path / "hub_ready"
    assert export(out, "--ckpt", ckpt) == 0
    assert export(out, "--ckpt", ckpt) == 2
    assert "already holds" in capsys.readouterr().err
    assert export(out, "--ckpt", ckpt, "--overwrite") == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("model,EGS\ntiny,twelve\n")
    assert export(tmp_path / "other", "--ckpt", ckpt, "--metrics", bad) == 2
    assert f"--metrics {bad}: line 2: 'twelve' is not a number" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()  # refused before anything was written
    assert export(tmp_path / "other", "--ckpt", tmp_path / "missing.ckpt") == 2
    assert "no such checkpoint file" in capsys.readouterr().err
    assert export("--ckpt", ckpt) == 2
    assert "nothing to export" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="folder without model.safetensors"):
        load_model(empty)


def test_export_of_a_hub_model(ckpt, tmp_path, monkeypatch):
    with open(ckpt, "rb") as fh:
        add_snapshot(tmp_path / "hub", "org/tiny", "d" * 40, {"model.safetensors": fh.read()}, refs=["main"])
    use_offline_cache(monkeypatch, tmp_path / "hub")
    assert export(tmp_path / "out", "--ckpt", "org/tiny") == 0
    assert same_weights(load_model(tmp_path / "out").state_dict(), load_model(ckpt).state_dict())
