"""Every SSL back-end trains through SSLBrain from its recipe hparams (tiny backbone, toy corpus)
and its exported checkpoint scores through `adf detect` as the model scores the same input."""
from __future__ import annotations

import os

import pandas as pd
import pytest
import torch

from adf.audio import load_16k
from adf.checkpoints import load_model
from adf.cli import main as adf_main
from adf.input_policy import get_policy
from adf.train import main as train_main
from tests.synth import ROOT, toy_corpus

HPARAMS = str(ROOT / "recipes" / "posttrain" / "hparams")

# back-end -> test-sized options (the recipes hold the published sizes)
OPTIONS = {
    "sls": "{hidden: 16, frames: 201}",
    "tcm": "{emb_size: 16, heads: 4, n_encoders: 1, kernel_size: 5}",
    "mamba": "{d_model: 16, n_layer: 1, d_state: 4, d_conv: 4, expand: 2, published_final_norm: true}",
    "vib": "{bottleneck: 8, beta: 0.01}",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    toy_corpus(root, (4, 2, 2))
    return root


@pytest.mark.parametrize("backend", list(OPTIONS))
def test_recipe_trains_and_adf_detect_scores_the_export(corpus, backend, tmp_path):
    out = tmp_path / "exp"
    train_main([os.path.join(HPARAMS, f"xlsr_300m_{backend}.yaml"), "--model_name", f"tiny_{backend}",
                "--backend_options", OPTIONS[backend], "--data_folder", str(corpus),
                "--manifest_folder", str(corpus / "data"), "--output_folder", str(out), "--noprogressbar",
                "--number_of_epochs", "1", "--optimizer_step_limit", "2", "--lr", "0.001",
                "--max_batch_size", "4", "--max_batch_seconds", "17", "--rawboost_algo", "0"])
    best = out / "save" / "best_model.safetensors"
    assert best.exists()
    model = load_model(best)  # everything from the file's metadata
    assert model.name == f"tiny_{backend}"
    assert model.input_policy == ("whole" if backend == "vib" else "first-64600")
    scores = tmp_path / "scores.csv"
    wavs = sorted((corpus / "audio").glob("test_*.wav"))
    assert adf_main(["detect", "--ckpt", str(best), "-o", str(scores), "--precision", "fp32", *map(str, wavs)]) == 0
    rows = pd.read_csv(scores).set_index("path")
    policy = get_policy(model.input_policy)
    with torch.no_grad():
        for wav in wavs:
            logits = model(policy.for_scoring(load_16k(wav))[None])[0]
            got = rows.loc[str(wav), ["logit_fake", "logit_real"]].to_numpy(dtype=float)
            assert abs(got - logits.numpy()).max() < 1e-4, wav


@pytest.mark.parametrize("backend", list(OPTIONS))
def test_padded_batch_through_the_backbone_scores_as_alone(backend):
    """The backbone's padding mask reaches the back-end: whole-utterance batches of different
    lengths give each utterance's own score."""
    from hyperpyyaml import load_hyperpyyaml

    from adf.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(f"tiny_{backend}", input_policy="whole",
                        backend_options=load_hyperpyyaml(OPTIONS[backend])).eval()
    g = torch.Generator().manual_seed(1)
    wav = torch.randn(2, 24000, generator=g)
    lengths = torch.tensor([24000, 13000])
    wav[1, 13000:] = 0
    with torch.no_grad():
        batched = model(wav, lengths)
        alone = torch.cat([model(wav[i:i + 1, :n]) for i, n in enumerate(lengths.tolist())])
    assert (batched - alone).abs().max() < 1e-4
