"""adf.scoring and tools/score_eer.py: formats, keys, grouping, bad input, outputs, CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from adf import metrics, scoring
from adf.data.manifest import COLUMNS
from tests.synth import ROOT as REPO_ROOT

ROOT = str(REPO_ROOT)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def trials():
    """Logits for 600 trials over three prefixes, with attacks for the fakes."""
    rng = np.random.default_rng(0)
    n = 600
    prefixes = np.array(["ItW", "FoR", "Libri", "Libri-R"])[rng.integers(0, 4, n)]
    y = rng.integers(0, 2, n)
    ids = [f"{p}-{i:04d}" for i, p in enumerate(prefixes)]
    logit_real = rng.normal(size=n) + 1.5 * y
    logit_fake = rng.normal(scale=0.5, size=n)
    attack = np.where(y == 1, "-", np.array(["A01", "A02"])[rng.integers(0, 2, n)])
    return pd.DataFrame({"id": ids, "logit_fake": logit_fake, "logit_real": logit_real, "label": y,
                         "attack": attack, "prefix": prefixes})


def write_detect(df, path, label=True):
    out = pd.DataFrame({"id": df["id"], "path": "/x/" + df["id"] + ".wav", "logit_fake": df["logit_fake"],
                        "logit_real": df["logit_real"],
                        "prob_real": metrics.sigmoid(df["logit_real"] - df["logit_fake"])})
    if label:
        out["label"] = df["label"]
    out.to_csv(path, index=False)
    return str(path)


def write_reference(df, path):
    score = [f"[{f!r}, {r!r}]" for f, r in zip(df["logit_fake"], df["logit_real"])]
    pd.DataFrame({"ID": df["id"], "Score": score, "Label": df["label"]}).to_csv(path, index=False)
    return str(path)


def write_text(df, path, label=True):
    with open(path, "w") as fh:
        for row in df.itertuples():
            s = row.logit_real - row.logit_fake
            fh.write(f"{row.id} {s!r}" + (f" {row.label}\n" if label else "\n"))
    return str(path)


def write_key_manifest(df, path):
    m = pd.DataFrame({c: "-" for c in COLUMNS}, index=df.index)
    m["ID"] = df["id"]
    m["Label"] = np.where(df["label"] == 1, "real", "fake")
    m["Duration"], m["SampleRate"], m["Path"] = 1.0, 16000, "$ROOT/" + df["id"] + ".wav"
    m["Attack"] = df["attack"]
    m["Language"] = "EN"
    m.to_csv(path, index=False)
    return str(path)


def test_three_formats_agree(trials, tmp_path):
    expected = (trials["logit_real"] - trials["logit_fake"]).to_numpy()
    for path, needle in [
        (write_detect(trials, tmp_path / "d.csv"), "logit_real - logit_fake"),
        (write_reference(trials, tmp_path / "r.csv"), "'[fake, real]'"),
        (write_text(trials, tmp_path / "t.txt"), "column 2"),
    ]:
        df, problems, description = scoring.read_scores(path)
        assert problems == [] and needle in description
        assert df["id"].tolist() == trials["id"].tolist()
        np.testing.assert_allclose(df["score"], expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(df["prob_real"], 1 / (1 + np.exp(-expected)), atol=1e-12)
        assert df["label"].tolist() == trials["label"].astype(float).tolist()


def test_reference_format_hand_values(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('ID,Score,Label\nA-1,"[0.5, 2.5]",1\nA-2,"[-1.0, -3.0]",0\n')
    df, _, _ = scoring.read_scores(path)
    assert df["score"].tolist() == [2.0, -2.0]
    np.testing.assert_allclose(df["prob_real"], [np.exp(2.5) / (np.exp(0.5) + np.exp(2.5)),
                                                  np.exp(-3) / (np.exp(-1) + np.exp(-3))])


def test_keys_manifest_and_two_column(trials, tmp_path):
    manifest = write_key_manifest(trials, tmp_path / "m.csv")
    key, problems = scoring.read_key(manifest, by="Attack")
    assert problems == [] and key["group"].tolist() == trials["attack"].tolist()
    assert key["label"].tolist() == trials["label"].astype(float).tolist()
    txt = tmp_path / "key.txt"
    txt.write_text("".join(f"{i} {'bonafide' if l else 'spoof'}\n" for i, l in zip(trials["id"], trials["label"])))
    key2, _ = scoring.read_key(txt)
    assert key2["label"].tolist() == key["label"].tolist()
    csv = tmp_path / "key.csv"
    csv.write_text("id,label\n" + "".join(f"{i},{l}\n" for i, l in zip(trials["id"], trials["label"])))
    key3, _ = scoring.read_key(csv)
    assert key3["label"].tolist() == key["label"].tolist()
    with pytest.raises(scoring.ScoreError, match="no column 'Nope'"):
        scoring.read_key(manifest, by="Nope")


def test_labels_from_key(trials, tmp_path):
    scores, _, _ = scoring.read_scores(write_text(trials, tmp_path / "t.txt", label=False))
    key, _ = scoring.read_key(write_key_manifest(trials, tmp_path / "m.csv"))
    labelled, problems, notes = scoring.attach_labels(scores, "t.txt", key, "m.csv")
    assert problems == [] and notes == []
    assert labelled["label"].tolist() == trials["label"].tolist()


def test_prefix_groups_match_direct_computation(trials):
    t = trials.assign(score=trials["logit_real"] - trials["logit_fake"],
                      prob_real=metrics.sigmoid(trials["logit_real"] - trials["logit_fake"]))
    t.loc[0, "id"] = "noprefix"  # no '-': only in Pooled
    rows = scoring.score_rows("f", t)
    by_subset = {r["subset"]: r for r in rows}
    # 'Libri-R-...' has the key 'Libri' (datasets.md §1.3): three subsets, not four
    assert list(by_subset) == ["Pooled", "FoR", "ItW", "Libri"]
    assert by_subset["Pooled"]["n_real"] + by_subset["Pooled"]["n_fake"] == len(t)
    assert sum(r["n_real"] + r["n_fake"] for r in rows[1:]) == len(t) - 1
    for name in ("FoR", "ItW", "Libri"):
        sel = t["prefix"].str.split("-").str[0].eq(name) & (t.index != 0)
        assert by_subset[name]["eer"] == metrics.compute_eer(t.loc[sel, "score"], t.loc[sel, "label"])[0]
        assert by_subset[name]["min_dcf"] == metrics.min_dcf(t.loc[sel, "score"], t.loc[sel, "label"])[0]
    only = scoring.score_rows("f", t, subsets=["ItW"])
    assert [r["subset"] for r in only] == ["Pooled", "ItW"]


def test_group_by_manifest_column_and_pooled_other_class(trials, tmp_path):
    scores, _, _ = scoring.read_scores(write_detect(trials, tmp_path / "d.csv"))
    key, _ = scoring.read_key(write_key_manifest(trials, tmp_path / "m.csv"), by="Attack")
    labelled, _, _ = scoring.attach_labels(scores, "d.csv", key, "m.csv")
    rows = {r["subset"]: r for r in scoring.score_rows("d", labelled)}
    assert set(rows) == {"Pooled", "-", "A01", "A02"}
    assert rows["A01"]["note"] == "only fake trials" and np.isnan(rows["A01"]["eer"])
    assert rows["A01"]["fpr"] == pytest.approx(np.mean(labelled.loc[labelled["group"] == "A01", "prob_real"] >= 0.5))
    pooled = {r["subset"]: r for r in scoring.score_rows("d", labelled, pool_missing_class=True)}
    sel = (labelled["group"] == "A01") | (labelled["label"] == 1)
    assert pooled["A01"]["eer"] == metrics.compute_eer(labelled.loc[sel, "score"], labelled.loc[sel, "label"])[0]
    assert pooled["A01"]["note"].startswith("vs pooled real")
    assert (pooled["A01"]["n_real"], pooled["A01"]["n_fake"]) == (int(labelled["label"].sum()), rows["A01"]["n_fake"])


@pytest.mark.parametrize(
    "body,match",
    [
        ("id,path,logit_fake,logit_real,prob_real,label\nA-1,p,0,nan,0.5,1\nA-2,p,0,1,0.7,0\n", "line 2: score"),
        ("id,path,logit_fake,logit_real,prob_real,label\nA-1,p,0,1,0.5,1\nA-1,p,0,2,0.7,0\n", "line 3: duplicate ID"),
        ("id,path,logit_fake,logit_real,prob_real,label\nA-1,p,0,1,0.5,1\nA-2,p,0,inf,0.7,0\n", "line 3: score"),
        ("id,path,logit_fake,logit_real,prob_real,label\nA-1,p,0,1,0.5,yes\nA-2,p,0,1,0.7,0\n", "line 2: label"),
        ('ID,Score,Label\nA-1,"[0.5, 2.5]",1\nA-2,"0.3",0\n', "(?s)1 problem.*line 3: Score is not"),
        ('ID,Score,Label\nA-1,"[0.5, 2.5]",1\nA-2,"[nan, 1]",0\n', "(?s)1 problem.*line 3: Score is not"),
        ("A-1 0.5 1\nA-2 0.1 0 extra\n", "not a readable table"),
        ("A-1 0.5 1 extra\nA-2 0.1 0\n", "line 1: more than 3 fields"),
        ("foo,bar\n1,2\n", "without an id/ID column"),
        ("", "file is empty"),
    ],
)
def test_bad_score_files_name_file_and_line(tmp_path, body, match):
    path = tmp_path / "bad.txt"
    path.write_text(body)
    with pytest.raises(scoring.ScoreError, match=match) as err:
        df, _, _ = scoring.read_scores(path)
        scoring.attach_labels(df, path)
    assert str(path) in str(err.value)


def test_unlabelled_and_contradicting_ids(trials, tmp_path):
    scores, _, _ = scoring.read_scores(write_detect(trials, tmp_path / "d.csv"))
    key = pd.DataFrame({"id": trials["id"][1:], "label": trials["label"][1:].astype(float)})
    key.iloc[0, 1] = 1 - key.iloc[0, 1]
    with pytest.raises(scoring.ScoreError) as err:
        scoring.attach_labels(scores, "d.csv", key, "k.txt")
    text = str(err.value)
    assert "line 2: no label in the key k.txt" in text and "line 3: label" in text and "2 problem(s)" in text
    kept, problems, _ = scoring.attach_labels(scores, "d.csv", key, "k.txt", on_error="skip")
    assert len(kept) == len(trials) - 2 and len(problems) == 2
    with pytest.raises(scoring.ScoreError, match="pass --key"):
        scoring.attach_labels(scoring.read_scores(write_text(trials, tmp_path / "t.txt", label=False))[0], "t.txt")


def test_skip_bad_rows_excludes_them(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("A-1 0.9 1\nA-2 nan 1\nA-3 0.1 0\nA-4 0.5 0\n")
    df, problems, _ = scoring.read_scores(path, on_error="skip")
    assert df["id"].tolist() == ["A-1", "A-3", "A-4"]
    assert problems == [f"{path}: line 2: score is missing, not a number, NaN or infinite (ID 'A-2')"]


def test_one_class_file_is_an_error(trials):
    t = trials[trials["label"] == 1].assign(score=0.0, prob_real=0.5)
    with pytest.raises(scoring.ScoreError, match="only real trials"):
        scoring.score_rows("reals.csv", t)


def test_writers(trials, tmp_path):
    t = trials.assign(score=trials["logit_real"] - trials["logit_fake"], prob_real=0.5)
    rows = scoring.score_rows("f", t)
    scoring.write_json(rows, tmp_path / "o.json", {"x": 1})
    scoring.write_rows_csv(rows, tmp_path / "o.csv")
    data = json.loads((tmp_path / "o.json").read_text())
    assert data["info"] == {"x": 1} and data["rows"][0]["eer"] == rows[0]["eer"]
    assert pd.read_csv(tmp_path / "o.csv")["eer"].tolist() == pytest.approx([r["eer"] for r in rows])
    md = scoring.format_markdown(rows).splitlines()
    assert md[0].startswith("| Subset | #real | #fake | EER% |") and len(md) == 2 + len(rows)
    assert f"| {100 * rows[0]['eer']:.2f} |" in md[2]
    text = scoring.format_text(rows).splitlines()
    assert text[0].split()[:4] == ["Subset", "#real", "#fake", "EER%"] and len(text) == 2 + len(rows)


def test_plots_written(trials, tmp_path):
    t = trials.assign(score=trials["logit_real"] - trials["logit_fake"], prob_real=0.5)
    paths = scoring.write_plots([("a.csv", t), ("b.csv", t)], tmp_path / "plots")
    assert [os.path.basename(p) for p in paths] == ["det.png", "hist_a.csv.png", "hist_b.csv.png"]
    for p in paths:
        with open(p, "rb") as fh:
            assert fh.read(8) == PNG_MAGIC
        assert os.path.getsize(p) > 5000


def run_cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "score_eer.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_end_to_end(trials, tmp_path):
    d = write_detect(trials, tmp_path / "d.csv")
    t = write_text(trials, tmp_path / "t.txt", label=False)
    m = write_key_manifest(trials, tmp_path / "m.csv")
    res = run_cli(d, t, "--key", m, "--ci", "20", "--json", "o.json", "--csv", "o.csv", "--markdown", "o.md",
                  "--plot", "plots", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"# {d}: score = logit_real - logit_fake; P(real) = prob_real" in res.stdout
    assert f"# {t}: score = column 2" in res.stdout
    rows = json.loads((tmp_path / "o.json").read_text())["rows"]
    assert [(r["file"], r["subset"]) for r in rows] == [(f, s) for f in ("d.csv", "t.txt")
                                                         for s in ("Pooled", "FoR", "ItW", "Libri")]
    score = trials["logit_real"] - trials["logit_fake"]
    assert rows[0]["eer"] == metrics.compute_eer(score, trials["label"])[0]
    assert rows[0]["eer_ci_low"] < rows[0]["eer"] < rows[0]["eer_ci_high"]
    assert rows[0]["eer"] == rows[4]["eer"]  # same scores, labels from the file vs the key
    table_row = next(line for line in res.stdout.splitlines() if line.startswith("t.txt") and "ItW" in line)
    assert f"{100 * rows[6]['eer']:.2f}" in table_row.split()
    for f in ("o.csv", "o.md", "plots/det.png", "plots/hist_d.csv.png"):
        assert (tmp_path / f).stat().st_size > 0

    by = run_cli(d, "--key", m, "--by", "Attack", "--pool-missing-class", "--subsets", "A01", cwd=tmp_path)
    assert by.returncode == 0, by.stderr
    assert [line.split()[0] for line in by.stdout.splitlines()[4:]] == ["Pooled", "A01"]
    assert "vs pooled real" in by.stdout


def test_cli_calibration_improves_actdcf(tmp_path):
    rng = np.random.default_rng(1)

    def write(path, n):
        y = rng.integers(0, 2, n)
        s = 4.0 * (rng.normal(size=n) + 2 * y) + 6.0  # mis-scaled, shifted
        path.write_text("".join(f"X-{i} {float(v)!r} {l}\n" for i, (v, l) in enumerate(zip(s, y))))
        return str(path)

    dev, ev = write(tmp_path / "dev.txt", 3000), write(tmp_path / "eval.txt", 3000)
    res = run_cli(ev, "--calibrate", dev, "--json", "o.json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "# calibration fitted on" in res.stdout
    row = json.loads((tmp_path / "o.json").read_text())["rows"][0]
    assert row["act_dcf_calibrated"] < row["act_dcf"] - 0.2
    assert row["cllr_calibrated"] < row["cllr"] / 2


def test_cli_bad_input_exit_code_and_message(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("A-1 0.9 1\nA-2 nan 1\nA-3 0.1 0\n")
    res = run_cli(str(path), cwd=tmp_path)
    assert res.returncode == 2
    assert f"error: {path}: 1 problem(s):" in res.stderr and "line 2: score" in res.stderr
    assert res.stdout == ""
    ok = run_cli(str(path), "--skip-bad", cwd=tmp_path)
    assert ok.returncode == 0 and "warning: skipped" in ok.stderr and "line 2" in ok.stderr
    missing = run_cli(str(tmp_path / "nope.csv"), cwd=tmp_path)
    assert missing.returncode == 2 and "nope.csv: 1 problem(s):\n  file does not exist" in missing.stderr
