"""`adf detect --engine onnxruntime`: the torch engine's fp32 scores, from a cached export."""
import os

import numpy as np
import pandas as pd
import pytest
import torch

from adf.cli import main

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from tests.test_onnx_export import CLIPS, EGS  # real egs clips of 8 and 16 kHz

TOLERANCE = 1e-4


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("ADF_CACHE_DIR", str(folder))
    return folder / "onnxruntime"


@pytest.fixture(scope="module")
def clips():
    paths = [os.path.join(EGS, c) for c in CLIPS]
    if not all(os.path.exists(p) for p in paths):
        pytest.skip("egs_data clips not present")
    return paths


def detect(ckpt, out, clips, *options):
    assert main(["detect", "--ckpt", str(ckpt), "-o", str(out), "--workers", "0", "--batch-size", "3",
                 *map(str, options), *clips]) == 0
    return pd.read_csv(out).set_index("path").loc[clips]


def test_engine_gives_the_torch_fp32_scores_and_embeddings(ckpt, clips, cache, tmp_path, capsys):
    want = detect(ckpt, tmp_path / "torch.csv", clips, "--precision", "fp32", "--embeddings", tmp_path / "t.npy")
    got = detect(ckpt, tmp_path / "ort.csv", clips, "--engine", "onnxruntime", "--embeddings", tmp_path / "o.npy")
    said = capsys.readouterr()
    assert "exporting tiny once" in said.err and "in fp32 [onnxruntime engine: auto means fp32 there]" in said.out
    assert len(list(cache.glob("tiny-*.onnx"))) == 1
    columns = ["logit_fake", "logit_real", "prob_real"]
    assert np.abs(got[columns].to_numpy() - want[columns].to_numpy()).max() < TOLERANCE
    margin = want["logit_real"] - want["logit_fake"]
    assert margin.max() - margin.min() > 100 * TOLERANCE  # the clips differ: the comparison can fail
    emb_want, emb_got = np.load(tmp_path / "t.npy"), np.load(tmp_path / "o.npy")
    assert emb_got.shape == emb_want.shape and np.abs(emb_got - emb_want).max() < TOLERANCE
    # windows of one clip go through the same graph, padded in batches
    want = detect(ckpt, tmp_path / "tw.csv", clips, "--precision", "fp32", "--window", "0.5", "--hop", "0.3")
    got = detect(ckpt, tmp_path / "ow.csv", clips, "--engine", "onnxruntime", "--window", "0.5", "--hop", "0.3")
    assert np.abs(got[columns].to_numpy() - want[columns].to_numpy()).max() < TOLERANCE


def test_cached_graph_is_reused_and_a_damaged_one_exported_again(ckpt, clips, cache, monkeypatch, capsys):
    from adf import Detector

    first = Detector.from_pretrained(ckpt, engine="onnxruntime").score(clips)
    assert Detector.from_pretrained(ckpt).precision != "int8"  # (torch engine loads as before)
    [path] = cache.glob("tiny-*.onnx")
    import adf.onnx_export

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cache holds the graph")

    with monkeypatch.context() as patch:
        patch.setattr(adf.onnx_export, "export_onnx", no_export)
        detector = Detector.from_pretrained(ckpt, engine="onnxruntime")
        again = detector.score(clips)
    assert [r["logit_real"] for r in again] == [r["logit_real"] for r in first]
    assert detector.info()["parameters"] == sum(p.numel() for p in Detector.from_pretrained(ckpt).model.parameters())
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as by a full disk
    capsys.readouterr()
    repaired = Detector.from_pretrained(ckpt, engine="onnxruntime").score(clips)
    assert "does not load" in capsys.readouterr().err
    assert np.allclose([r["logit_real"] for r in repaired], [r["logit_real"] for r in first], atol=1e-6)


def test_fixed_input_system_runs_on_the_engine(tmp_path, clips, cache):
    """AASIST-L's graph takes inputs already cut to 64,600 samples: it has no `lengths` input."""
    from adf.checkpoints import save_checkpoint
    from adf.models.classifier import build_classifier

    torch.manual_seed(0)
    ckpt = tmp_path / "aasist_l.ckpt"
    save_checkpoint(build_classifier("aasist_l"), ckpt)
    want = detect(ckpt, tmp_path / "t.csv", clips[:2], "--precision", "fp32")
    got = detect(ckpt, tmp_path / "o.csv", clips[:2], "--engine", "onnxruntime")
    assert np.abs(got["logit_real"].to_numpy() - want["logit_real"].to_numpy()).max() < TOLERANCE


@pytest.mark.parametrize("options, message", [
    (["--precision", "bf16"], "the onnxruntime engine runs fp32"),
    (["--compile"], "--compile applies to the torch engine only"),
    (["--resolution", "0.1"], "--resolution needs the frame logits of the torch engine"),
])
def test_engine_refuses_what_it_cannot_run(ckpt, clips, cache, tmp_path, capsys, options, message):
    assert main(["detect", "--ckpt", ckpt, "-o", str(tmp_path / "x.csv"), "--engine", "onnxruntime",
                 *options, clips[0]]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists() and not cache.exists()


def test_unwritable_cache_is_one_clear_error(ckpt, clips, tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("ADF_CACHE_DIR", str(blocker))
    assert main(["detect", "--ckpt", ckpt, "-o", str(tmp_path / "x.csv"), "--engine", "onnxruntime",
                 clips[0]]) == 2
    err = capsys.readouterr().err
    assert "cannot write the graph cache" in err and "ADF_CACHE_DIR" in err


def test_engine_runs_on_the_cpu_by_default_on_a_cuda_machine(ckpt, clips, cache, tmp_path, monkeypatch):
    """Without --device, a machine with CUDA still runs the CPU-only engine (the torch engine's
    default there is cuda, which the engine refuses when asked for it by name)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    got = detect(ckpt, tmp_path / "o.csv", clips[:1], "--engine", "onnxruntime")
    assert len(got) == 1 and np.isfinite(got["prob_real"]).all()
    assert main(["detect", "--ckpt", str(ckpt), "-o", str(tmp_path / "x.csv"), "--engine", "onnxruntime",
                 "--device", "cuda", clips[0]]) == 2
