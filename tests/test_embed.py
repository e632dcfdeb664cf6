"""`adf embed`: pooled embeddings through the detect engine, batched and resumable."""
import os

import numpy as np
import pandas as pd
import pytest
import torch

from adf.analysis import load_embeddings
from adf.audio import load_for_model
from adf.checkpoints import load_model
from adf.cli import main
from tests.synth import write_manifest, write_noise as noise
from tests.test_detect import interrupt_after


def expected_embedding(ckpt, path):
    """Independent: the model on one file, no batching."""
    with torch.inference_mode():
        _, emb = load_model(ckpt)(load_for_model(path)[None], return_embedding=True)
    return emb[0].numpy()


def test_embed_files_and_manifest(ckpt, tmp_path, capsys):
    files = [noise(tmp_path / "a" / f"{k}.wav", 0.3 + 0.15 * k, 16000 if k % 2 else 8000, seed=k) for k in range(4)]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    man = write_manifest(tmp_path / "m.csv", [dict(ID="m0", Label="fake", Path=files[0]), dict(ID="m1", Label="real", Path=files[3])])
    out = tmp_path / "emb.npy"
    assert main(["embed", "--precision", "fp32", "--ckpt", ckpt, "-o", str(out), "--workers", "0", "--batch-size", "3",
                 str(tmp_path / "a"), str(bad), man]) == 0
    assert "skipped" in capsys.readouterr().err
    X, ids = load_embeddings(str(out), str(tmp_path / "emb.csv"))  # the id list loads where analysis reads it
    table = pd.read_csv(tmp_path / "emb.csv", dtype=str)
    assert ids == ["0", "1", "2", "3", "m0", "m1"] and X.shape == (6, 128)
    for vec, path in zip(X, table["path"]):
        assert vec == pytest.approx(expected_embedding(ckpt, path), abs=1e-4)
    assert not os.path.exists(str(out) + ".partial")
    assert table["label"].tolist()[-2:] == ["0", "1"]
    assert main(["embed", "--precision", "fp32", "--ckpt", ckpt, "-o", str(tmp_path / "emb.txt"), files[0]]) == 2


def test_embed_resumes_and_rescores_rows_without_embeddings(ckpt, tmp_path, monkeypatch, capsys):
    import adf.inference

    files = [noise(tmp_path / f"{k}.wav", 0.3, 16000, seed=k) for k in range(5)]
    out = tmp_path / "emb.npy"
    real_score_items = interrupt_after(monkeypatch, 3)
    assert main(["embed", "--precision", "fp32", "--ckpt", ckpt, "-o", str(out), "--workers", "0", "--batch-size", "1", *files]) == 130
    assert not out.exists() and len(os.listdir(str(out) + ".partial")) == 3
    monkeypatch.setattr(adf.inference, "score_items", real_score_items)
    capsys.readouterr()
    assert main(["embed", "--precision", "fp32", "--ckpt", ckpt, "-o", str(out), "--workers", "0", *files]) == 0
    assert "scored 2 input(s) (3 already scored)" in capsys.readouterr().out
    X, ids = load_embeddings(str(out), str(tmp_path / "emb.csv"))
    assert ids == ["0", "1", "2", "3", "4"]
    for vec, path in zip(X, files):
        assert vec == pytest.approx(expected_embedding(ckpt, path), abs=1e-4)
    # Finished: a re-run embeds nothing and keeps the array.
    assert main(["embed", "--precision", "fp32", "--ckpt", ckpt, "-o", str(out), "--workers", "0", *files]) == 0
    assert "scored 0 input(s) (5 already scored)" in capsys.readouterr().out
    assert np.array_equal(np.load(out), X.astype(np.float32))
    # --overwrite embeds everything again (same model: same array).
    assert main(["embed", "--precision", "fp32", "--ckpt", ckpt, "-o", str(out), "--workers", "0", "--overwrite", *files]) == 0
    assert "scored 5 input(s)," in capsys.readouterr().out
    assert np.load(out) == pytest.approx(X.astype(np.float32), abs=1e-5)
    # A detect score file without embeddings: `--embeddings` scores its rows again.
    scores = tmp_path / "s.csv"
    assert main(["detect", "--ckpt", ckpt, "-o", str(scores), "--workers", "0", *files[:2]]) == 0
    capsys.readouterr()
    assert main(["detect", "--ckpt", ckpt, "-o", str(scores), "--embeddings", str(tmp_path / "s.npy"),
                 "--workers", "0", *files[:2]]) == 0
    assert "scored 2 input(s)" in capsys.readouterr().out
    assert np.load(tmp_path / "s.npy").shape == (2, 128)
