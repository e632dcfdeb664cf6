"""Whole published checkpoints of SLS, Conformer+TCM and XLSR-Mamba (fairseq XLS-R under
`ssl_model.model.` + the back-end in its published layout), with seeded weights at the size of
adf's `tiny` backbone: read strictly, architecture and back-end options inferred from shapes,
scored by `load_model` and `adf detect` as transformers' backbone + the published head are."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from transformers import Wav2Vec2Config, Wav2Vec2Model

from adf.checkpoints import CheckpointError, load_model
from adf.checkpoints.published import load_published_backend
from adf.cli import main as adf_main
from adf.input_policy import tile_to
from adf.models.backbones import BACKBONES
from adf.models.backends.mamba import MambaBackend
from adf.models.backends.sls import SLSBackend
from adf.models.backends.tcm import TCMBackend, sinusoidal_table
from hf_reference import hf_config, hf_to_fairseq
from published_layouts import (mamba_published_shapes, seeded_state_dict, sls_published_shapes,
                               tcm_published_shapes)

TINY = BACKBONES["tiny"][1]
DIM = TINY["encoder_embed_dim"]

# back-end -> (published head layout, adf class, options the shapes imply, DataParallel prefix)
SYSTEMS = {
    "sls": (sls_published_shapes(embed_dim=DIM, hidden=24), SLSBackend, dict(hidden=24, frames=201), "module."),
    "tcm": (tcm_published_shapes(n_encoders=2, emb=16, heads=4, kernel=7, embed_dim=DIM), TCMBackend,
            dict(emb_size=16, heads=4, n_encoders=2, kernel_size=7, ff_mult=4, conv_expansion=2,
                 positions=10000), ""),
    "mamba": (mamba_published_shapes(d=16, n_layer=2, embed_dim=DIM, d_state=8), MambaBackend,
              dict(d_model=16, n_layer=2, d_state=8, d_conv=4, expand=2), ""),
}


def _tiny_transformers_backbone():
    """transformers' Wav2Vec2Model with the architecture of adf's `tiny`, weights perturbed."""
    torch.manual_seed(0)
    model = Wav2Vec2Model(hf_config(
        Wav2Vec2Config, "layer", True, True, TINY["extractor_conv_layer_config"], DIM,
        TINY["encoder_num_layers"], TINY["encoder_num_heads"], TINY["encoder_ff_interm_features"],
        TINY["encoder_pos_conv_kernel"], TINY["encoder_pos_conv_groups"]))
    model.set_attn_implementation("eager")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def _published_file(tmp_path, backend):
    shapes, _, _, prefix = SYSTEMS[backend]
    hf = _tiny_transformers_backbone()
    sd = {f"ssl_model.model.{k}": v for k, v in hf_to_fairseq(hf.state_dict(), group_norm=False).items()}
    head = seeded_state_dict(shapes, 11)
    if backend == "tcm":
        head["conformer.positional_emb"] = sinusoidal_table(10000, 16)[None]
    if backend == "mamba":
        for k in head:
            if k.endswith("A_log"):
                head[k] = torch.log(torch.arange(1, 9).float()).expand(shapes[k]) + 0.1 * head[k]
    sd.update(head)
    path = tmp_path / f"{backend}_best.pth"
    torch.save({prefix + k: v for k, v in sd.items()}, path)
    return path, hf, head


def _reference(hf, head, backend, wav):
    """transformers' features through the back-end loaded from the published head alone."""
    _, cls, options, _ = SYSTEMS[backend]
    module = load_published_backend(cls(DIM, **options), head, "head").eval()
    outputs = []
    def keep(module, inputs, output):  # a layer returns its hidden states (or a tuple starting with them)
        outputs.append(output if torch.is_tensor(output) else output[0])

    hooks = [layer.register_forward_hook(keep) for layer in hf.encoder.layers]
    with torch.no_grad():
        last = hf(wav).last_hidden_state
        feats = torch.stack(outputs, dim=1) if backend == "sls" else last
        logits = module(feats, None)
    for h in hooks:
        h.remove()
    return logits


@pytest.mark.parametrize("backend", list(SYSTEMS))
def test_published_checkpoint_loads_and_scores_as_published(tmp_path, backend):
    path, hf, head = _published_file(tmp_path, backend)
    model = load_model(path)
    assert model.name == f"tiny_{backend}"
    assert model.backend_options == SYSTEMS[backend][2]
    assert model.input_policy == "first-64600"
    wav = torch.randn(2, 64600, generator=torch.Generator().manual_seed(3)) * 0.1
    with torch.no_grad():
        got = model(wav)
    ref = _reference(hf, head, backend, wav)
    diff = (got - ref).abs().max().item()
    print(f"{backend}: published file via load_model vs transformers + published head: {diff:.2e}")
    assert diff < 1e-4
    assert ref.std() > 0  # two different utterances, two different scores

    # adf detect: the first 64,600 samples, tiled, unnormalised (the published evaluation input)
    audio = tmp_path / "clip.wav"
    clip = (0.1 * np.random.default_rng(4).standard_normal(40000)).astype("float32")
    sf.write(audio, clip, 16000, subtype="FLOAT")
    scores = tmp_path / "scores.csv"
    assert adf_main(["detect", "--ckpt", str(path), "-o", str(scores), "--precision", "fp32", str(audio)]) == 0
    row = pd.read_csv(scores).iloc[0]
    ref = _reference(hf, head, backend, tile_to(torch.from_numpy(clip), 64600)[None])[0]
    assert abs(row["logit_fake"] - ref[0].item()) < 1e-4 and abs(row["logit_real"] - ref[1].item()) < 1e-4


def test_published_layout_problems_are_listed(tmp_path):
    path, _, _ = _published_file(tmp_path, "tcm")
    sd = torch.load(path, weights_only=True)
    sd["conformer.encoder_blocks.0.attn.fn.qkv.bias"] = torch.zeros(48)  # a layer the model lacks
    del sd["conformer.fc5.bias"]
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        load_model(path, model_name="tiny_tcm")
    msg = str(err.value)
    assert msg.startswith(f"{path}: ")
    assert "missing: backend.out.bias" in msg
    assert "unexpected: backend.blocks.0.attn.qkv.bias" in msg  # (published: qkv has no bias)
