"""Drift estimators on synthetic shifts of known size, and `adf drift` end to end."""
import json

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import sqrtm

from adf.cli import main
from adf.drift import estimators as est
from adf.drift.monitor import comparisons


def gaussians(n, d, shift=0.0, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * scale + shift


def random_spd(d, rng):
    A = rng.standard_normal((d, d))
    return A @ A.T / d + 0.1 * np.eye(d)


# --- closed forms --------------------------------------------------------------

def test_frechet_closed_form_diagonal_and_general():
    # Diagonal covariances: |dmu|^2 + sum (sqrt(a) - sqrt(b))^2.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert est.frechet_gaussian(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)
    # General covariances against scipy's matrix square root of S1 S2.
    rng = np.random.default_rng(1)
    S1, S2 = random_spd(5, rng), random_spd(5, rng)
    m1, m2 = rng.standard_normal(5), rng.standard_normal(5)
    ref = np.sum((m1 - m2) ** 2) + np.trace(S1 + S2 - 2 * sqrtm(S1 @ S2).real)
    assert est.frechet_gaussian(m1, S1, m2, S2) == pytest.approx(ref, rel=1e-8)
    assert est.frechet_gaussian(m1, S1, m1, S1) == pytest.approx(0, abs=1e-9)


def test_kl_closed_form():
    # 1-D: log(s1/s0) + (s0^2 + (m0 - m1)^2) / (2 s1^2) - 1/2
    m0, s0, m1, s1 = 0.5, 2.0, -1.0, 0.5
    expected = np.log(s1 / s0) + (s0 ** 2 + (m0 - m1) ** 2) / (2 * s1 ** 2) - 0.5
    assert est.kl_gaussian([m0], [[s0 ** 2]], [m1], [[s1 ** 2]]) == pytest.approx(expected)
    # Independent dimensions add up.
    assert est.kl_gaussian([m0, 0], np.diag([s0 ** 2, 1]), [m1, 0], np.diag([s1 ** 2, 1])) == pytest.approx(expected)
    # Monte Carlo estimate of E_P[log p - log q] in 3-D.
    from scipy.stats import multivariate_normal as mvn

    rng = np.random.default_rng(2)
    S0, S1 = random_spd(3, rng), random_spd(3, rng)
    mu0, mu1 = rng.standard_normal(3), rng.standard_normal(3)
    x = mvn(mu0, S0).rvs(200_000, random_state=3)
    mc = np.mean(mvn(mu0, S0).logpdf(x) - mvn(mu1, S1).logpdf(x))
    assert est.kl_gaussian(mu0, S0, mu1, S1) == pytest.approx(mc, rel=0.02)


def test_sample_estimates_approach_the_closed_forms():
    """Large samples of known Gaussians: the plug-in estimates match the closed forms."""
    n, d = 20_000, 4
    X = gaussians(n, d, seed=0)
    Y = gaussians(n, d, shift=0.5, scale=2.0, seed=1)
    # N(0, I) vs N(0.5, 4I): Fréchet = d*0.25 + d*(1-2)^2; Jeffreys = sum of the two KLs.
    assert est.frechet(X, Y)["frechet"] == pytest.approx(d * 0.25 + d * 1.0, rel=0.03)
    kl_pq = est.kl_gaussian(np.zeros(d), np.eye(d), np.full(d, 0.5), 4 * np.eye(d))
    kl_qp = est.kl_gaussian(np.full(d, 0.5), 4 * np.eye(d), np.zeros(d), np.eye(d))
    got = est.gaussian_kl(X, Y, dim=d, ridge=0)
    assert got["kl_dim"] == d
    assert got["gaussian_kl"] == pytest.approx(kl_pq + kl_qp, rel=0.03)


# --- synthetic shifts ------------------------------------------------------------

def test_no_shift_near_zero_and_pvalues_not_small():
    pvalues, aucs = [], []
    for seed in range(8):
        X, Y = gaussians(60, 8, seed=2 * seed), gaussians(60, 8, seed=2 * seed + 1)
        r = est.all_estimators(X, Y, kl_dim=4, permutations=200, seed=seed)
        pvalues.append(r["mmd_pvalue"])
        aucs.append(r["classifier_auc"])
        # Only the finite-sample bias remains (a shift of 1 in every dimension gives about 8 for both).
        assert r["frechet"] < 1.5 and r["gaussian_kl"] < 1.2
    assert min(pvalues) > 0.01 and np.mean(pvalues) > 0.25  # roughly uniform under H0
    assert abs(np.mean(aucs) - 0.5) < 0.1


def test_growing_shift_gives_monotone_distances():
    X = gaussians(150, 8, seed=0)
    rows = [est.all_estimators(X, gaussians(150, 8, shift=s, seed=1), kl_dim=4, permutations=200)
            for s in (0.0, 0.25, 0.5, 1.0, 2.0)]
    for key in ("frechet", "gaussian_kl", "mmd2", "classifier_auc"):
        values = [r[key] for r in rows]
        assert np.all(np.diff(values) > 0), (key, values)
    assert rows[0]["mmd_pvalue"] > 0.05
    assert rows[-1]["mmd_pvalue"] == pytest.approx(1 / 201)  # no permutation reaches a large shift
    assert rows[-1]["classifier_auc"] > 0.95


def test_mmd_against_brute_force():
    X, Y = gaussians(7, 3, seed=0), gaussians(5, 3, shift=0.7, seed=1)
    h = 1.3
    k = lambda a, b: np.exp(-np.sum((a - b) ** 2) / (2 * h * h))  # noqa: E731
    xx = sum(k(X[i], X[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(Y[i], Y[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    xy = sum(k(a, b) for a in X for b in Y) / 35
    assert est.mmd(X, Y, permutations=0, bandwidth=h)["mmd2"] == pytest.approx(xx + yy - 2 * xy)
    Z = np.concatenate([X, Y])
    median = np.median([np.linalg.norm(Z[i] - Z[j]) for i in range(12) for j in range(i + 1, 12)])
    assert est.mmd(X, Y, permutations=0)["mmd_bandwidth"] == pytest.approx(median)


def test_mmd_pvalue_definition_and_bad_input():
    X, Y = gaussians(10, 2, seed=0), gaussians(10, 2, seed=0)  # identical samples
    r = est.mmd(X, Y, permutations=99)
    assert r["mmd_pvalue"] > 0.5 and r["mmd2"] < 0
    with pytest.raises(ValueError, match="same D"):
        est.frechet(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least"):
        est.mmd(np.zeros((1, 3)), np.zeros((5, 3)))


# --- grouping and the command ------------------------------------------------------

def test_comparisons_groups_and_windows():
    t = pd.DataFrame({"ID": list("abcdefg"), "g": list("xyxyxyz"), "time": ["7", "6", "5", "4", "3", "2", "1"]})
    groups = dict((k, v.tolist()) for k, v in comparisons(t, by="g"))
    assert groups == {"x": [0, 2, 4], "y": [1, 3, 5], "z": [6]}
    windows = [(k, v.tolist()) for k, v in comparisons(t, window=3)]
    assert windows == [("0-2", [0, 1, 2]), ("3-5", [3, 4, 5]), ("6-6", [6])]
    ordered = [v.tolist() for _, v in comparisons(t, window=3, order_by="time")]
    assert ordered == [[6, 5, 4], [3, 2, 1], [0]]


def write_side(folder, name, X, ids, **columns):
    np.save(folder / f"{name}.npy", X.astype(np.float32))
    pd.DataFrame({"id": ids, **columns}).to_csv(folder / f"{name}.csv", index=False)
    return str(folder / f"{name}.npy")


def test_drift_command_groups_windows_alarms(tmp_path, capsys):
    d = 6
    ref = write_side(tmp_path, "ref", gaussians(80, d, seed=0), [f"r{i}" for i in range(80)],
                     label=["1"] * 70 + ["0"] * 10)
    # Incoming: 40 unshifted rows ('same'), then 40 shifted by 3 ('moved'), a 3-row group too small to test.
    Y = np.concatenate([gaussians(40, d, seed=1), gaussians(40, d, shift=3.0, seed=2), gaussians(3, d, seed=3)])
    ids = [f"n{i}" for i in range(83)]
    new = write_side(tmp_path, "new", Y, ids)
    man = tmp_path / "meta.csv"
    pd.DataFrame({"ID": ids, "Batch": ["same"] * 40 + ["moved"] * 40 + ["tiny"] * 3}).to_csv(man, index=False)
    out = tmp_path / "by"
    rc = main(["drift", "--reference", ref, "--incoming", new, "--manifest", str(man), "--by", "Batch",
               "--reference-where", "label=1", "--permutations", "100", "--kl-dim", "4", "-o", str(out),
               "--fail-on-alarm"])
    assert rc == 3
    report = json.loads((out / "drift.json").read_text())
    rows = {r["group"]: r for r in report["rows"]}
    assert rows["moved"]["alarm"] and not rows["same"]["alarm"]
    assert rows["moved"]["frechet"] > 10 * rows["same"]["frechet"]
    assert rows["same"]["n_reference"] == 70 and rows["same"]["n_incoming"] == 40
    assert "skipped" in rows["tiny"]
    assert (out / "drift.png").stat().st_size > 0
    assert list(pd.read_csv(out / "drift.csv")["group"]) == ["moved", "same", "tiny"]
    # Windows of 20 rows in file order: the alarm starts with the shifted rows; a threshold alarm too.
    out = tmp_path / "win"
    assert main(["drift", "--reference", ref, "--incoming", new, "--window", "20", "--permutations", "1000",
                 "--alpha", "0.002", "--estimators", "frechet,mmd", "--threshold", "frechet=1000",
                 "-o", str(out)]) == 0
    rows = json.loads((out / "drift.json").read_text())["rows"]
    assert [r["alarm"] for r in rows[:4]] == [False, False, True, True]
    assert "classifier_auc" not in rows[0]
    capsys.readouterr()
    assert main(["drift", "--reference", ref, "--incoming", new, "--threshold", "frechet=1", "--alpha", "0",
                 "--estimators", "frechet", "-o", str(tmp_path / "t")]) == 0
    assert "frechet" in json.loads((tmp_path / "t" / "drift.json").read_text())["rows"][0]["alarm_reasons"]


def test_drift_command_errors(tmp_path, capsys):
    ref = write_side(tmp_path, "ref", gaussians(10, 3), [f"r{i}" for i in range(10)])
    other = write_side(tmp_path, "other", gaussians(10, 4), [f"o{i}" for i in range(10)])
    assert main(["drift", "--reference", ref, "--incoming", other, "-o", str(tmp_path / "x")]) == 2
    assert "same model" in capsys.readouterr().err
    assert main(["drift", "--reference", ref, "--incoming", ref, "--by", "Nope", "-o", str(tmp_path / "x")]) == 2
    assert "no column 'Nope'" in capsys.readouterr().err
    assert main(["drift", "--reference", ref, "--incoming", ref, "--estimators", "fid", "-o", str(tmp_path / "x")]) == 2
    assert "unknown estimator" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("id\nr0\n")
    assert main(["drift", "--reference", ref, "--reference-ids", str(tmp_path / "bad.csv"), "--incoming", ref,
                 "-o", str(tmp_path / "x")]) == 2
    assert "1 IDs but 10 embedding rows" in capsys.readouterr().err


def test_drift_split_groups():
    """tools/drift_split.py: reference = part of the training real rows (per speaker), the rest grouped."""
    from tools.drift_split import split

    rows = []
    for spk, split_name in (("a", "train"), ("b", "train"), ("c", "test")):
        rows += [dict(ID=f"{spk}{i}", Label="real", Speaker=spk, Proportion=split_name, Attack="-") for i in range(6)]
    rows += [dict(ID=f"f{i}", Label="fake", Speaker="x", Proportion=("train", "test")[i % 2],
                  Attack=("tts", "voc")[i // 4]) for i in range(8)]
    df = pd.DataFrame(rows)
    reference, incoming, groups = split(df, holdout=1 / 3, seed=0)
    assert len(reference) == 8 and set(reference.Speaker) == {"a", "b"}  # 4 of each training speaker's 6
    assert reference.Speaker.value_counts().tolist() == [4, 4]
    g = groups.set_index("ID")["Group"]
    assert (g[g.index.str.startswith("c")] == "real:test").all()
    assert sorted(g[g == "real:train-heldback"].index.str[0]) == ["a", "a", "b", "b"]
    assert g["f0"] == "fake:tts" and g["f7"] == "fake:voc"
    assert set(incoming.ID) == set(groups.ID) and not set(reference.ID) & set(incoming.ID)
