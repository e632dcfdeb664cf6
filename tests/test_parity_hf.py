"""Backbone parity: adf's loader + torchaudio network vs Hugging Face transformers.

Small random transformers models (group-norm + post-LN like W2V-Small,
layer-norm + pre-LN with conv bias like W2V-Large / 1B, HuBERT without conv
bias) are renamed to fairseq keys by tests/hf_reference.py, wrapped like the
released AntiDeepfake files, loaded through adf.checkpoints and compared on
the last hidden states and the logits of mean pooling + the same Linear.
"""
from __future__ import annotations

import argparse

import pytest
import torch
from safetensors.torch import save_file

from adf.checkpoints import CheckpointError, load_backbone_into, load_model
from adf.models.classifier import SSLClassifier
from hf_reference import HF_ONLY_VARIANTS, VARIANTS, antideepfake_state_dict, hf_to_fairseq, small_pair

TOL = 1e-4


def _wav(batch=2, seconds=1.0, seed=1):
    g = torch.Generator().manual_seed(seed)
    wav = torch.randn(batch, int(16000 * seconds), generator=g)
    return torch.nn.functional.layer_norm(wav, wav.shape[-1:])


def _reference(hf_model, head, wav):
    with torch.no_grad():
        hidden = hf_model(wav).last_hidden_state
        return hidden, head(hidden.mean(dim=1))


def _files(tmp_path, variant, mapping=hf_to_fairseq):
    hf_model, name, overrides = small_pair(variant)
    group_norm = VARIANTS[variant][2] == "group"
    head = torch.nn.Linear(32, 2)
    sd = antideepfake_state_dict(mapping(hf_model.state_dict(), group_norm), head)
    ckpt = tmp_path / "antideepfake.ckpt"
    torch.save(sd, ckpt)
    st = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(st))
    return hf_model, head, name, overrides, ckpt, st


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_antideepfake_files_match_transformers(tmp_path, variant):
    hf_model, head, name, overrides, ckpt, st = _files(tmp_path, variant)
    wav = _wav()
    ref_hidden, ref_logits = _reference(hf_model, head, wav)
    for path in (ckpt, st):
        model = load_model(path, model_name=name, **overrides)
        assert not model.training
        with torch.no_grad():
            hidden, _ = model.frames(wav)
            logits = model(wav)
        d_hidden = (hidden - ref_hidden).abs().max().item()
        d_logits = (logits - ref_logits).abs().max().item()
        print(f"{variant} {path.name}: max |hidden diff| {d_hidden:.2e}, max |logit diff| {d_logits:.2e}")
        assert hidden.shape == ref_hidden.shape
        assert d_hidden < TOL and d_logits < TOL
        assert ref_hidden.abs().max() > 0.1  # the comparison is not between near-zero tensors


def _swap_q_k(hf_sd, group_norm):
    sd = hf_to_fairseq(hf_sd, group_norm)
    swapped = {}
    for k, v in sd.items():
        k2 = k.replace("q_proj", "@").replace("k_proj", "q_proj").replace("@", "k_proj")
        swapped[k2] = v
    return swapped


def test_negative_control_swapped_q_k_changes_outputs(tmp_path):
    hf_model, head, name, overrides, ckpt, _ = _files(tmp_path, "w2v_large_like", _swap_q_k)
    model = load_model(ckpt, model_name=name, **overrides)  # same shapes: loads
    ref_hidden, ref_logits = _reference(hf_model, head, _wav())
    with torch.no_grad():
        hidden, _ = model.frames(_wav())
    assert (hidden - ref_hidden).abs().max() > 100 * TOL


def test_negative_control_renamed_key_is_reported(tmp_path):
    def renamed(hf_sd, group_norm):
        sd = hf_to_fairseq(hf_sd, group_norm)
        sd["encoder.layers.1.ffn_in.weight"] = sd.pop("encoder.layers.1.fc1.weight")
        return sd

    _, _, name, overrides, ckpt, _ = _files(tmp_path, "hubert_xl_like", renamed)
    with pytest.raises(CheckpointError) as err:
        load_model(ckpt, model_name=name, **overrides)
    msg = str(err.value)
    assert str(ckpt) in msg
    assert "1 missing: backbone.encoder.transformer.layers.1.feed_forward.intermediate_dense.weight" in msg
    assert "1 unexpected: m_ssl.model.encoder.layers.1.ffn_in.weight" in msg


def test_fairseq_pretraining_pt_loads_backbone_and_drops_pretraining_keys(tmp_path):
    hf_model, name, overrides = small_pair("w2v_small_like", seed=3)
    sd = hf_to_fairseq(hf_model.state_dict(), group_norm=True)
    assert "mask_emb" in sd  # from transformers' masked_spec_embed
    sd.update({  # the other pre-training-only parameters of wav2vec 2.0 and HuBERT
        "quantizer.vars": torch.randn(1, 640, 128), "quantizer.weight_proj.weight": torch.randn(640, 16),
        "quantizer.weight_proj.bias": torch.randn(640), "project_q.weight": torch.randn(8, 128),
        "project_q.bias": torch.randn(8), "final_proj.weight": torch.randn(8, 32),
        "final_proj.bias": torch.randn(8), "label_embs_concat": torch.randn(504, 8),
    })
    path = tmp_path / "checkpoint_best.pt"
    torch.save({"model": sd, "args": argparse.Namespace(arch="wav2vec2", conv_bias=False),
                "cfg": {"model": {"_name": "wav2vec2", "extractor_mode": "default"}},
                "extra_state": {"epoch": 3}, "optimizer_history": [{"num_updates": 10}]}, path)
    model = SSLClassifier(name, **overrides).eval()
    head = {k: v.clone() for k, v in model.proj_fc.state_dict().items()}
    ckpt = load_backbone_into(model, path)
    assert ckpt.source == "fairseq" and not ckpt.has_head
    assert all(torch.equal(head[k], v) for k, v in model.proj_fc.state_dict().items())
    wav = _wav(batch=1, seconds=0.7)
    ref_hidden, _ = _reference(hf_model, torch.nn.Linear(32, 2), wav)
    with torch.no_grad():
        hidden, _ = model.frames(wav)
    assert (hidden - ref_hidden).abs().max() < TOL
    with pytest.raises(CheckpointError, match="no detector head"):
        load_model(path, model_name=name, **overrides)


# --- transformers-layout files: XLS-R 300M, UniSpeech-SAT, WavLM ---------------------------

@pytest.mark.parametrize("variant", list(HF_ONLY_VARIANTS))
@pytest.mark.parametrize("prefix", ["", "pretraining"])
def test_transformers_files_match_transformers(tmp_path, variant, prefix):
    hf_model, name, overrides = small_pair(variant, seed=5)
    head = torch.nn.Linear(32, 2)
    sd = dict(hf_model.state_dict())
    if prefix:  # as saved by *ForPreTraining: model under its prefix, pre-training heads beside it
        base = {"xlsr_300m": "wav2vec2.", "unispeech_sat": "unispeech_sat.", "wavlm_large": "wavlm."}[name]
        sd = {base + k: v for k, v in sd.items()}
        sd.update({"quantizer.codevectors": torch.randn(1, 640, 8), "project_q.weight": torch.randn(8, 8),
                   "project_hid.weight": torch.randn(8, 32), "project_hid.bias": torch.randn(8)})
    sd["proj_fc.weight"], sd["proj_fc.bias"] = head.weight.detach(), head.bias.detach()
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    wav = _wav()
    ref_hidden, ref_logits = _reference(hf_model, head, wav)
    model = load_model(path, model_name=name, **overrides)
    with torch.no_grad():
        hidden, _ = model.frames(wav)
        logits = model(wav)
    d_hidden = (hidden - ref_hidden).abs().max().item()
    d_logits = (logits - ref_logits).abs().max().item()
    print(f"{variant} ({prefix or 'bare'}): max |hidden diff| {d_hidden:.2e}, max |logit diff| {d_logits:.2e}")
    assert d_hidden < TOL and d_logits < TOL
    assert ref_hidden.abs().max() > 0.1
    # every layer's output (for layer-weighting back-ends), against transformers' hidden states:
    # transformers lists the input of each layer, then the last output after the final layer norm
    layers = []
    with torch.no_grad():
        model.frames(wav, layer_outputs=layers)
        ref_states = hf_model(wav, output_hidden_states=True).hidden_states
    assert len(layers) == len(ref_states) - 1 == 2
    assert (layers[0] - ref_states[1]).abs().max() < TOL


def test_wavlm_padded_batch_equals_single_utterances(tmp_path):
    hf_model, name, overrides = small_pair("wavlm_large_like", seed=6)
    path = tmp_path / "wavlm.safetensors"
    sd = {**hf_model.state_dict(), "proj_fc.weight": torch.randn(2, 32), "proj_fc.bias": torch.randn(2)}
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    model = load_model(path, model_name=name, **overrides)
    wav = _wav(batch=2)
    lengths = torch.tensor([16000, 9000])
    wav[1, 9000:] = 0
    with torch.no_grad():
        batched = model(wav, lengths)
        alone = torch.cat([model(wav[i:i + 1, :n]) for i, n in enumerate(lengths.tolist())])
        ref = hf_model(wav[1:, :9000]).last_hidden_state
        hidden, _ = model.frames(wav[1:, :9000])
    assert (batched - alone).abs().max() < TOL
    assert (hidden - ref).abs().max() < TOL


def test_wavlm_incomplete_qkv_is_reported(tmp_path):
    hf_model, name, overrides = small_pair("wavlm_large_like")
    sd = dict(hf_model.state_dict())
    del sd["encoder.layers.1.attention.k_proj.weight"]
    sd["proj_fc.weight"], sd["proj_fc.bias"] = torch.randn(2, 32), torch.randn(2)
    path = tmp_path / "broken.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    with pytest.raises(CheckpointError) as err:
        load_model(path, model_name=name, **overrides)
    msg = str(err.value)
    assert "missing: backbone.encoder.transformer.layers.1.attention.attention.in_proj_weight" in msg
    assert "unexpected: backbone.encoder.transformer.layers.1.attention.q_proj.weight" in msg


def test_transformers_pytorch_model_bin_starts_post_training(tmp_path):
    """--init_from pytorch_model.bin (torch.save of a *ForPreTraining state dict): backbone only."""
    hf_model, name, overrides = small_pair("wavlm_large_like", seed=8)
    sd = {f"wavlm.{k}": v for k, v in hf_model.state_dict().items()}
    sd["quantizer.weight_proj.weight"] = torch.randn(640, 32)
    path = tmp_path / "pytorch_model.bin"
    torch.save(sd, path)
    model = SSLClassifier(name, **overrides).eval()
    ckpt = load_backbone_into(model, path)
    assert ckpt.source == "transformers" and not ckpt.has_head
    wav = _wav(batch=1, seconds=0.8)
    with torch.no_grad():
        hidden, _ = model.frames(wav)
        ref = hf_model(wav).last_hidden_state
    assert (hidden - ref).abs().max() < TOL
