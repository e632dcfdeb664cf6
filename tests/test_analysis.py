"""adf.analysis and tools/embedding_analysis.py: loading, linear probe, plot, CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from adf import analysis, metrics
from adf.data.manifest import COLUMNS
from adf.scorefile import ScoreError
from tests.synth import ROOT as REPO_ROOT

ROOT = str(REPO_ROOT)


def make_set(tmp_path, n=300, dim=16, shift=3.0, seed=0):
    """Embeddings whose first dimension carries the label with strength `shift`."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, dim))
    X[:, 0] += shift * y
    ids = [f"{'ItW' if i % 2 else 'FoR'}-{i:04d}" for i in range(n)]
    attack = np.where(y == 1, "-", np.array(["A01", "A02"])[rng.integers(0, 2, n)])
    np.save(tmp_path / "emb.npy", X.astype(np.float32))
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    m = pd.DataFrame({c: "-" for c in COLUMNS}, index=range(n))
    m["ID"], m["Label"], m["Attack"] = ids, np.where(y == 1, "real", "fake"), attack
    m["Speaker"] = [f"spk{i % 20}" for i in range(n)]
    m.to_csv(tmp_path / "m.csv", index=False)
    return X, y, ids


def test_probe_matches_manual_cross_validation(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    X, y, _ = make_set(tmp_path, shift=1.0)
    scores = np.empty(len(y))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=3).split(X, y):
        scaler = StandardScaler().fit(X[train])
        clf = LogisticRegression(max_iter=2000).fit(scaler.transform(X[train]), y[train])
        scores[test] = clf.decision_function(scaler.transform(X[test]))
    got = analysis.linear_probe(X, y, folds=5, seed=3)
    assert got["eer"] == pytest.approx(metrics.compute_eer(scores, y)[0])
    assert 0.1 < got["eer"] < 0.45  # weak signal: neither perfect nor chance


def test_probe_separable_and_chance(tmp_path):
    X, y, _ = make_set(tmp_path, shift=8.0)
    assert analysis.linear_probe(X, y)["eer"] == 0.0
    rng = np.random.default_rng(1)
    noise = analysis.linear_probe(rng.normal(size=(400, 8)), rng.integers(0, 2, 400))
    assert 0.35 < noise["eer"] < 0.65


def test_grouped_folds_keep_groups_together(tmp_path):
    X, y, _ = make_set(tmp_path)
    groups = np.arange(len(y)) % 20
    from sklearn.model_selection import StratifiedGroupKFold

    for train, test in StratifiedGroupKFold(5, shuffle=True, random_state=0).split(X, y, groups):
        assert not set(groups[train]) & set(groups[test])
    assert analysis.linear_probe(X, y, groups=groups)["grouped"] is True


def test_projections_and_plot(tmp_path):
    X, y, ids = make_set(tmp_path)
    for method in ("pca", "tsne"):
        xy = analysis.project_2d(X[:50], method)
        assert xy.shape == (50, 2) and np.isfinite(xy).all()
    from sklearn.decomposition import PCA

    np.testing.assert_allclose(np.abs(analysis.project_2d(X, "pca")), np.abs(PCA(2).fit_transform(X)), atol=1e-8)
    path = tmp_path / "p.png"
    analysis.plot_embedding(analysis.project_2d(X, "pca"), y, ["A"] * len(y), path, "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_manifest_columns_and_corpus(tmp_path):
    _, y, ids = make_set(tmp_path)
    info = analysis.manifest_columns(tmp_path / "m.csv", ids[::-1], ["Attack", "corpus"])
    assert info["label"].tolist() == y[::-1].tolist()
    assert info["corpus"].tolist() == [i.split("-")[0] for i in ids[::-1]]
    with pytest.raises(ScoreError, match="no row for embedding ID 'X-1'"):
        analysis.manifest_columns(tmp_path / "m.csv", ["X-1"], [])
    with pytest.raises(ScoreError, match="no column 'Nope'"):
        analysis.manifest_columns(tmp_path / "m.csv", ids, ["Nope"])


def test_bad_embeddings(tmp_path):
    X, _, ids = make_set(tmp_path)
    (tmp_path / "short.txt").write_text("\n".join(ids[:-1]))
    with pytest.raises(ScoreError, match=f"{len(ids) - 1} IDs but {len(ids)} embedding rows"):
        analysis.load_embeddings(tmp_path / "emb.npy", tmp_path / "short.txt")
    X[5, 2] = np.nan
    np.save(tmp_path / "nan.npy", X)
    with pytest.raises(ScoreError, match="row 5: NaN"):
        analysis.load_embeddings(tmp_path / "nan.npy", tmp_path / "ids.txt")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ScoreError, match="not a plain numeric"):
        analysis.load_embeddings(tmp_path / "obj.npy", tmp_path / "ids.txt")
    # IDs may also come from a CSV with an id column (the detect CSV)
    pd.DataFrame({"id": ids, "path": "x"}).to_csv(tmp_path / "d.csv", index=False)
    assert analysis.load_embeddings(tmp_path / "emb.npy", tmp_path / "d.csv")[1] == ids


def test_cli_end_to_end(tmp_path):
    make_set(tmp_path, shift=8.0)
    res = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "embedding_analysis.py"), "emb.npy", "--ids", "ids.txt",
         "--manifest", "m.csv", "--out", "out", "--mark-by", "corpus", "--cv-groups", "Speaker"],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "EER 0.00%" in res.stdout and "grouped by Speaker" in res.stdout
    probe = json.loads((tmp_path / "out" / "probe.json").read_text())
    assert probe["eer"] == 0.0 and probe["dim"] == 16 and probe["cv_groups"] == "Speaker"
    assert (tmp_path / "out" / "embedding_pca.png").stat().st_size > 5000
