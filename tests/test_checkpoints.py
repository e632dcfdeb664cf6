"""adf.checkpoints: own format round trip, safe unpickling, corrupt files, strict keys,
architecture inference and the conversion tool."""
from __future__ import annotations

import argparse
import fractions
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from adf.checkpoints import (CheckpointError, equivalent_names, infer_model_name,
                             load_backbone_into, load_model, read_checkpoint, read_state_dict,
                             save_checkpoint)
from adf.checkpoints.keys import to_adf_keys
from adf.models.backbones import BACKBONES
from adf.models.classifier import SSLClassifier, build_classifier
from hf_reference import full_size_on_meta, hf_to_fairseq, small_pair
from tests.synth import ROOT


def _tiny(seed=0):
    torch.manual_seed(seed)
    return build_classifier("tiny").eval()


def _wav(n=2, samples=8000):
    return torch.randn(n, samples, generator=torch.Generator().manual_seed(5))


def _tool(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "convert_checkpoint.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


# --- adf's own format -------------------------------------------------------------------

def test_round_trip_of_own_checkpoint(tmp_path):
    model, path = _tiny(), tmp_path / "best.safetensors"
    save_checkpoint(model, path, extra={"step": 12, "valid_eer": 0.031})
    assert not path.with_name(path.name + ".tmp").exists()
    loaded = load_model(path)
    assert loaded.name == "tiny" and not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    wav = _wav()
    with torch.no_grad():
        assert torch.equal(model(wav), loaded(wav))
        loaded.proj_fc.weight.add_(1.0)  # weights may be memory-mapped: the file must not change
    ckpt = read_checkpoint(path)
    assert ckpt.extra == {"step": 12, "valid_eer": 0.031} and ckpt.source == "adf"
    assert torch.equal(ckpt.state_dict["proj_fc.weight"], model.proj_fc.weight)


def test_round_trip_of_test_sized_config_needs_no_overrides(tmp_path):
    _, name, overrides = small_pair("w2v_small_like")
    model = SSLClassifier(name, **overrides).eval()
    save_checkpoint(model, tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(model(_wav()), loaded(_wav()))


def test_bf16_load_equals_set_precision_on_the_fp32_model(tmp_path):
    model = _tiny()
    save_checkpoint(model, tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors", dtype=torch.bfloat16)
    expected = _tiny().set_precision("bf16").state_dict()  # same seed, cast in memory
    got = loaded.state_dict()
    assert got.keys() == expected.keys()
    for key, tensor in expected.items():
        assert got[key].dtype == tensor.dtype and not got[key].is_meta, key
        assert torch.equal(got[key], tensor), key
    # matrices in bf16; layer norms and the head exact, in fp32
    fp32 = {k for k, t in got.items() if t.dtype == torch.float32}
    assert {"proj_fc.weight", "proj_fc.bias"} <= fp32
    assert fp32 == {k for k in got if "layer_norm" in k or k.startswith("proj_fc")}
    assert torch.equal(got["proj_fc.weight"], model.proj_fc.weight)
    with torch.no_grad():
        ref, out = model(_wav()), loaded(_wav())
    assert out.dtype == torch.float32
    assert (ref - out).abs().max() < 0.05 * ref.abs().max() + 0.05


def test_speechbrain_state_dict_is_read_and_name_inferred(tmp_path, caplog):
    model = _tiny()
    torch.save(model.state_dict(), tmp_path / "model.ckpt")  # what SpeechBrain's Checkpointer writes
    with caplog.at_level(logging.INFO, logger="adf.checkpoints"):
        loaded = load_model(tmp_path / "model.ckpt")
    assert loaded.name == "tiny"
    assert "inferred 'tiny'" in caplog.text
    with torch.no_grad():
        assert torch.equal(model(_wav()), loaded(_wav()))


def test_load_backbone_into_keeps_or_loads_the_head(tmp_path):
    src = _tiny(seed=1)
    save_checkpoint(src, tmp_path / "m.safetensors")
    dst = _tiny(seed=2)
    head = dst.proj_fc.weight.detach().clone()
    load_backbone_into(dst, tmp_path / "m.safetensors")
    assert torch.equal(dst.proj_fc.weight, head)
    assert torch.equal(dst.backbone.encoder.feature_projection.projection.weight,
                       src.backbone.encoder.feature_projection.projection.weight)
    load_backbone_into(dst, tmp_path / "m.safetensors", include_head=True)
    assert torch.equal(dst.proj_fc.weight, src.proj_fc.weight)
    with pytest.raises(CheckpointError, match="does not fit the backbone of model 'w2v_small'"):
        with torch.device("meta"):
            big = build_classifier("w2v_small")
        load_backbone_into(big, tmp_path / "m.safetensors")


# --- strict keys ------------------------------------------------------------------------

def test_missing_unexpected_and_misshaped_keys_are_listed(tmp_path):
    sd = _tiny().state_dict()
    del sd["backbone.encoder.transformer.layers.1.final_layer_norm.bias"]
    sd["backbone.encoder.extra.weight"] = torch.zeros(3)
    dim = sd["proj_fc.weight"].shape[1]
    sd["proj_fc.weight"] = torch.zeros(3, dim)
    path = tmp_path / "bad.ckpt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        load_model(path, model_name="tiny")
    msg = str(err.value)
    assert msg.startswith(f"{path}: does not fit model 'tiny'")
    assert "1 missing: backbone.encoder.transformer.layers.1.final_layer_norm.bias" in msg
    assert "1 unexpected: backbone.encoder.extra.weight" in msg
    assert f"1 mis-shaped: proj_fc.weight (3, {dim}) vs (2, {dim}) expected" in msg


def test_wrong_model_name_is_reported(tmp_path):
    save_checkpoint(_tiny(), tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match=r"does not fit model 'w2v_small'.*missing.*mis-shaped"):
        load_model(tmp_path / "m.safetensors", model_name="w2v_small")


# --- unsafe pickles ---------------------------------------------------------------------

class _Payload:
    """Pickles to a call of os.system: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("zip_format", [True, False])
def test_pickle_with_forbidden_global_is_refused_without_running_it(tmp_path, zip_format):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"model": _tiny().state_dict(), "x": _Payload(marker)}, path,
               _use_new_zipfile_serialization=zip_format)
    with pytest.raises(CheckpointError) as err:
        read_state_dict(path)
    msg = str(err.value)
    assert str(path) in msg and f"refused to unpickle: it needs {os.system.__module__}.system," in msg
    assert "--trust-pickle" in msg
    assert not marker.exists()
    result = _tool(path, tmp_path / "out.safetensors")  # the tool also needs the flag
    assert result.returncode == 2 and "refused to unpickle" in result.stderr
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


def test_fairseq_allow_list_and_trusted_conversion(tmp_path):
    hf_model, name, overrides = small_pair("w2v_large_like")
    fairseq_sd = hf_to_fairseq(hf_model.state_dict(), group_norm=False)
    ok = tmp_path / "allowed.pt"
    torch.save({"model": fairseq_sd, "args": argparse.Namespace(arch="wav2vec2"),
                "extra_state": {"best": np.float64(0.5), "hist": np.arange(3), "n": np.int64(2)}}, ok)
    assert read_checkpoint(ok).source == "fairseq"
    # Files written under numpy < 2 name numpy.core.multiarray (pickle protocol 2 spells
    # globals out as text, so the legacy stream can be edited in place to show it).
    old_numpy = tmp_path / "old_numpy.pt"
    torch.save({"model": fairseq_sd, "best": np.float64(0.5), "hist": np.arange(3)}, old_numpy,
               _use_new_zipfile_serialization=False)
    data = old_numpy.read_bytes()
    assert data.count(b"numpy._core.multiarray\n") == 2
    old_numpy.write_bytes(data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    assert read_checkpoint(old_numpy).source == "fairseq"

    odd = tmp_path / "odd.pt"  # a harmless type that is not on the allow-list
    torch.save({"model": fairseq_sd, "cfg": {"lr": fractions.Fraction(1, 3)}}, odd)
    with pytest.raises(CheckpointError, match="fractions.Fraction"):
        read_checkpoint(odd)
    out = tmp_path / "odd.safetensors"
    result = _tool("--trust-pickle", odd, out)
    assert result.returncode == 0, result.stderr
    assert "full trust" in result.stderr and "without head" in result.stdout
    model = SSLClassifier(name, **overrides)
    load_backbone_into(model, out)
    assert torch.equal(model.backbone.encoder.transformer.layers[1].attention.q_proj.weight,
                       fairseq_sd["encoder.layers.1.self_attn.q_proj.weight"])


# --- corrupt files ----------------------------------------------------------------------

def _corrupt_files(tmp_path):
    sd = _tiny().state_dict()
    files = {}
    torch.save(sd, tmp_path / "zip.ckpt")
    torch.save(sd, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    save_checkpoint(_tiny(), tmp_path / "st.safetensors")
    for name in ("zip.ckpt", "legacy.pt", "st.safetensors"):
        data = (tmp_path / name).read_bytes()
        files[f"truncated {name}"] = data[: len(data) // 2]
    files["safetensors header cut"] = (tmp_path / "st.safetensors").read_bytes()[:40]
    files["empty"] = b""
    files["garbage"] = b"this is not a checkpoint\n" * 10
    paths = {}
    for label, data in files.items():
        paths[label] = tmp_path / (label.replace(" ", "_") + ".bin")
        paths[label].write_bytes(data)
    paths["missing"] = tmp_path / "does_not_exist.ckpt"
    return paths


def test_truncated_and_corrupt_files_name_the_file(tmp_path):
    for label, path in _corrupt_files(tmp_path).items():
        with pytest.raises(CheckpointError) as err:
            load_model(path)
        assert str(err.value).startswith(f"{path}: "), (label, str(err.value))


# --- architecture inference -------------------------------------------------------------

def test_every_name_is_inferred_from_shapes():
    for name in BACKBONES:
        with torch.device("meta"):
            sd = build_classifier(name).state_dict()
        assert infer_model_name(sd) == equivalent_names(name)[0]
        assert name in equivalent_names(infer_model_name(sd))


def test_architecture_identical_names():
    assert equivalent_names("mms_300m") == ["w2v_large", "mms_300m", "xlsr_300m"]
    assert equivalent_names("unispeech_sat") == ["unispeech_sat"]  # no conv bias
    assert equivalent_names("wavlm_large") == ["wavlm_large"]  # same shapes as unispeech_sat + WavLM's attention
    assert equivalent_names("xlsr_1b") == ["mms_1b", "xlsr_1b"]
    assert equivalent_names("hubert_xl") == ["hubert_xl"]
    assert equivalent_names("w2v_small") == ["w2v_small"]


@pytest.mark.parametrize("name", ["w2v_small", "w2v_large", "xlsr_1b", "xlsr_2b", "hubert_xl"])
def test_inference_on_transformers_models_in_fairseq_naming(name):
    cfg = BACKBONES[name][1]
    hf_model = full_size_on_meta(cfg, name)
    fairseq_sd = hf_to_fairseq(hf_model.state_dict(), cfg["extractor_mode"] == "group_norm")
    assert infer_model_name(to_adf_keys(fairseq_sd)) == equivalent_names(name)[0]


def test_unknown_architecture_is_an_error(tmp_path):
    _, name, overrides = small_pair("hubert_xl_like")
    torch.save(SSLClassifier(name, **overrides).state_dict(), tmp_path / "odd.ckpt")
    with pytest.raises(CheckpointError, match=r"odd.ckpt: the weights match no known model .*embed_dim=32"):
        load_model(tmp_path / "odd.ckpt")
