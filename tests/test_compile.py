"""`compile_layers` (torch.compile of each transformer layer) computes what the
eager model computes: scores, gradients and checkpoints are unchanged."""
import shutil

import pytest
import torch
import torch.nn.functional as F

from adf.checkpoints import load_model, save_checkpoint
from adf.models.classifier import build_classifier

pytestmark = pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")),
                                reason="TorchInductor on the CPU needs a C++ compiler")

NO_DROPOUT = dict(encoder_projection_dropout=0.0, encoder_attention_dropout=0.0,
                  encoder_ff_interm_dropout=0.0, encoder_dropout=0.0, encoder_layer_drop=0.0)


def twins(**kwargs):
    torch.manual_seed(0)
    eager = build_classifier("tiny", **kwargs)
    torch.manual_seed(0)
    compiled = build_classifier("tiny", compile_layers=True, **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(eager.state_dict().values(), compiled.state_dict().values()))
    return eager, compiled


def batch():
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([16000, 11000, 7000])
    wav = torch.randn(3, 16000, generator=g)
    wav[torch.arange(16000)[None, :] >= lengths[:, None]] = 0.0
    return wav, lengths


def test_compiled_layers_score_like_eager():
    eager, compiled = twins()
    eager.eval(), compiled.eval()
    wav, lengths = batch()
    with torch.inference_mode():
        for args in ((wav, lengths), (wav[:1], None), (wav[1:2, :9000], None)):  # padded, unpadded, new length
            ref, got = eager(*args), compiled(*args)
            assert torch.allclose(got, ref, atol=1e-5), (args[0].shape, (got - ref).abs().max())
        compiled.set_precision("bf16"), eager.set_precision("bf16")
        ref, got = eager(wav, lengths), compiled(wav, lengths)
        assert torch.allclose(got, ref, atol=0.05), (got - ref).abs().max()
    # The compiled graph really replaced the layers' code.
    layer = compiled.backbone.encoder.transformer.layers[0]
    assert layer._compiled_call_impl is not None


@pytest.mark.parametrize("checkpointing", [False, True])
def test_compiled_layers_train_like_eager(checkpointing):
    eager, compiled = twins(activation_checkpointing=checkpointing, **NO_DROPOUT)
    wav, lengths = batch()
    target = torch.tensor([0, 1, 1])
    for model in (eager, compiled):
        model.train()
        F.cross_entropy(model(wav, lengths), target).backward()
    for (name, a), (_, b) in zip(eager.named_parameters(), compiled.named_parameters()):
        assert a.grad is not None and torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-6), name


def test_compiled_model_checkpoint_loads_into_an_eager_model(tmp_path):
    _, compiled = twins()
    save_checkpoint(compiled, tmp_path / "c.safetensors")
    loaded = load_model(tmp_path / "c.safetensors")
    assert loaded.state_dict().keys() == compiled.state_dict().keys()
    wav, lengths = batch()
    with torch.inference_mode():
        assert torch.allclose(loaded(wav, lengths), compiled.eval()(wav, lengths), atol=1e-5)


def test_detect_compile_flag_gives_the_same_scores(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd
    import soundfile as sf

    from adf.cli import main
    from adf.models.classifier import SSLClassifier

    compiled_models = []
    compile_layers = SSLClassifier.compile_layers
    monkeypatch.setattr(SSLClassifier, "compile_layers",
                        lambda self, **kw: compiled_models.append(self) or compile_layers(self, **kw))
    torch.manual_seed(0)
    save_checkpoint(build_classifier("tiny"), tmp_path / "m.safetensors")
    rng = np.random.default_rng(0)
    for i, seconds in enumerate((1.0, 2.5, 1.7)):
        sf.write(tmp_path / f"a{i}.wav", (0.1 * rng.standard_normal(int(seconds * 16000))).astype("float32"), 16000)
    scores = {}
    for flags in ([], ["--compile"]):
        out = tmp_path / f"scores{len(flags)}.csv"
        assert main(["detect", "--ckpt", str(tmp_path / "m.safetensors"), "-o", str(out), "--workers", "0",
                     "--batch-size", "2", "--precision", "fp32", *flags, str(tmp_path)]) == 0
        scores[len(flags)] = pd.read_csv(out).sort_values("id")
    eager, compiled = scores[0], scores[1]
    assert len(compiled_models) == 1  # only the --compile run compiled
    assert len(eager) == 3 and list(eager["id"]) == list(compiled["id"])
    assert np.allclose(eager["logit_real"], compiled["logit_real"], atol=1e-4)
