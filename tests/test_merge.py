"""Merging per-corpus manifests (datasets.md §4) on small generated manifests."""
import pandas as pd
import pytest

from adf.data.manifest import COLUMNS, read_manifest
from adf.data.merge import check_sampling, merge, merge_main, summarise, write_merge


def rows(prefix, n, proportion="train", label="real", language="EN", start=0, seconds=3.0):
    ids = [f"{prefix}-{i:05d}" for i in range(start, start + n)]
    return pd.DataFrame({
        "ID": ids, "Label": label, "Duration": seconds, "SampleRate": 16000,
        "Path": [f"$ROOT/{prefix}/{i}.wav" for i in ids], "Attack": "-", "Speaker": "-",
        "Proportion": proportion, "AudioChannel": 1, "AudioEncoding": "PCM_S",
        "AudioBitSample": 16, "Language": language,
    })


@pytest.fixture
def corpora(tmp_path):
    d = tmp_path / "manifests"
    d.mkdir()
    a = pd.concat([rows("A", 30), rows("A", 10, "valid", start=30), rows("A", 5, "test", "fake", start=40)])
    b = pd.concat([rows("B", 20, "-", "fake", "ZH", seconds=2.0), rows("B", 4, "valid", "fake", "ZH", start=20)])
    c = rows("C", 12, "train", "fake", "JA", seconds=10.0)
    t1 = pd.concat([rows("T1", 6, "test", "fake"), rows("T1", 3, "train", start=6), rows("T1", 2, "valid", start=9)])
    t2 = rows("T2", 7, "-", "real", "-")
    for name, df in (("A", a), ("B", b), ("C", c), ("T1", t1), ("T2", t2)):
        df.to_csv(d / f"{name}.csv", index=False)
    return d, {"A": a, "B": b, "C": c, "T1": t1, "T2": t2}


def _lists(d, train=("A", "Missing", "B", "C"), test=("T1", "T2")):
    return [(n, str(d / f"{n}.csv")) for n in train], [(n, str(d / f"{n}.csv")) for n in test]


def test_reference_split_rule(corpora):
    d, src = corpora
    result = merge(*_lists(d))
    assert any("Missing" in p and "not found" in p for p in result.problems)
    # valid: Proportion == valid rows, unshuffled, in list order
    expected_valid = [i for n in "ABC" for i in src[n].loc[src[n]["Proportion"] == "valid", "ID"]]
    assert list(result.valid["ID"]) == expected_valid
    # train: every other row (train, test, -) exactly once, shuffled
    expected_train = [i for n in "ABC" for i in src[n].loc[src[n]["Proportion"] != "valid", "ID"]]
    assert sorted(result.train["ID"]) == sorted(expected_train) and len(result.train) == len(expected_train)
    assert list(result.train["ID"]) != expected_train
    # test: concatenated in list order, Proportion ignored
    assert list(result.test["ID"]) == list(src["T1"]["ID"]) + list(src["T2"]["ID"])
    # deterministic shuffle (seed 42 by default); another seed gives another order
    assert list(merge(*_lists(d)).train["ID"]) == list(result.train["ID"])
    assert list(merge(*_lists(d), seed=1).train["ID"]) != list(result.train["ID"])
    # the row contents travel with their IDs
    merged = result.train.set_index("ID")
    assert merged.loc["B-00003", "Language"] == "ZH" and merged.loc["C-00000", "Duration"] == 10.0


def test_written_outputs_are_valid_manifests(corpora, tmp_path):
    d, src = corpora
    result = merge(*_lists(d))
    write_merge(result, tmp_path / "out")
    for split in ("train", "valid", "test"):
        df, problems = read_manifest(tmp_path / "out" / f"{split}.csv")
        assert problems == [] and list(df.columns) == COLUMNS
        assert list(df["ID"]) == list(getattr(result, split)["ID"])
    assert "Missing" in (tmp_path / "out" / "merge_problems.txt").read_text()


def test_duplicates_within_a_manifest(tmp_path):
    base = rows("D", 6)
    identical = base.iloc[[1]]
    conflicting = base.iloc[[3]].assign(Label="fake")
    df = pd.concat([base, identical, conflicting, identical])
    df.to_csv(tmp_path / "D.csv", index=False)
    result = merge([("D", str(tmp_path / "D.csv"))], [])
    ids = sorted(result.train["ID"])
    # the reference would drop D-00001 and D-00003 entirely; identical copies are
    # collapsed to one row, conflicting rows are all dropped
    assert ids == ["D-00000", "D-00001", "D-00002", "D-00004", "D-00005"]
    assert sum("identical copy" in p and "D-00001" in p for p in result.problems) == 2
    assert sum("duplicate ID 'D-00003'" in p for p in result.problems) == 2


def test_bad_rows_are_dropped_and_reported(tmp_path):
    df = rows("E", 5)
    df.loc[1, "Duration"] = -1
    df.loc[2, "Label"] = "spoof"
    df.to_csv(tmp_path / "E.csv", index=False)
    (tmp_path / "F.csv").write_text("not,a,manifest\n1,2,3\n")
    result = merge([("E", str(tmp_path / "E.csv")), ("F", str(tmp_path / "F.csv"))], [])
    assert sorted(result.train["ID"]) == ["E-00000", "E-00003", "E-00004"]
    assert any("row 3, column Duration" in p for p in result.problems)
    assert any("row 4, column Label" in p for p in result.problems)
    assert any("F.csv" in p and "unusable" in p for p in result.problems)


def test_cross_manifest_duplicates_and_leakage(tmp_path):
    rows("G", 5).to_csv(tmp_path / "G.csv", index=False)
    clash = rows("G", 4, start=3).assign(Language="XX")  # G-00003, G-00004 clash with G.csv
    clash.to_csv(tmp_path / "H.csv", index=False)
    rows("G", 2, "test", start=0).to_csv(tmp_path / "T.csv", index=False)  # train/test leakage
    result = merge([("G", str(tmp_path / "G.csv")), ("H", str(tmp_path / "H.csv"))],
                   [("T", str(tmp_path / "T.csv"))])
    train = result.train.set_index("ID")
    assert train.index.is_unique and len(train) == 7
    assert train.loc["G-00003", "Language"] == "EN"  # the first manifest wins
    assert any("2 ID(s) of H already came from G" in p for p in result.problems)
    assert any("train.csv and test.csv share 2 ID(s)" in p for p in result.problems)
    assert len(result.test) == 2  # leakage is reported, the test set left whole


def test_sampling_weight_and_hour_cap(corpora):
    d, src = corpora
    train, test = _lists(d)
    sampling = {"A": {"weight": 0.5}, "C": {"max_hours": 0.025}}  # 90 s of 10 s clips
    result = merge(train, test, sampling)
    counts = result.train["_corpus"].value_counts()
    assert counts["A"] == round(0.5 * 35) and counts["B"] == 20
    assert counts["C"] == 9 and result.train.loc[result.train["_corpus"] == "C", "Duration"].sum() <= 90
    assert len(result.valid) == 14  # validation rows are never sampled
    # seeded, and a corpus's selection does not depend on the others
    again = merge(train, test, sampling)
    assert sorted(again.train["ID"]) == sorted(result.train["ID"])
    alone = merge([t for t in train if t[0] == "A"], [], {"A": {"weight": 0.5}})
    assert sorted(alone.train["ID"]) == sorted(result.train.loc[result.train["_corpus"] == "A", "ID"])
    other = merge(train, test, sampling, seed=7)
    assert sorted(other.train["ID"]) != sorted(result.train["ID"])
    assert any("A: sampling" in n and "kept 18 of 35" in n for n in result.notes)


@pytest.mark.parametrize("config,match", [
    ({"Nope": {"weight": 0.5}}, "not in the training list"),
    ({"A": {"weight": 1.5}}, "0 < weight <= 1"),
    ({"A": {"weight": 0}}, "0 < weight <= 1"),
    ({"A": {"max_hours": -1}}, "max_hours"),
    ({"A": {"hours": 3}}, "expected a mapping"),
])
def test_bad_sampling_config(config, match):
    with pytest.raises(ValueError, match=match):
        check_sampling(config, ["A", "B"])


def test_segment_columns_survive(tmp_path):
    seg = rows("S", 3, "test").assign(Start=[0, 100, 200], Stop=[100, 200, 250])
    seg.to_csv(tmp_path / "S.csv", index=False)
    rows("U", 2, "test").to_csv(tmp_path / "U.csv", index=False)
    result = merge([], [("S", str(tmp_path / "S.csv")), ("U", str(tmp_path / "U.csv"))])
    write_merge(result, tmp_path / "out")
    text = (tmp_path / "out" / "test.csv").read_text().splitlines()
    assert text[0].endswith(",Start,Stop") and text[2].endswith(",100,200") and text[4].endswith(",,")
    df, problems = read_manifest(tmp_path / "out" / "test.csv")
    assert problems == [] and list(df["Start"]) == [0, 100, 200, -1, -1]


def test_cli_with_yaml_config_and_summary(corpora, tmp_path, capsys):
    d, src = corpora
    cfg = tmp_path / "sampling.yaml"
    cfg.write_text("A:\n  weight: 0.5\n")
    out = tmp_path / "merged"
    assert merge_main(["--manifests", str(d), "--out", str(out), "--train", "A", "B", "C",
                       "--test", "T1", str(d / "T2.csv"), "--sampling", str(cfg)]) == 0
    text = capsys.readouterr().out
    train = pd.read_csv(out / "train.csv")
    assert len(train) == 18 + 20 + 12
    # summary numbers agree with an independent count of the written file
    hours = train["Duration"].sum() / 3600
    assert f"== train.csv: {len(train)} clips, {hours:.2f} h" in text
    n_fake = int((train["Label"] == "fake").sum())
    assert any(line.split()[:2] == ["fake", str(n_fake)] for line in text.splitlines())
    assert any(line.split()[:2] == ["JA", "12"] for line in text.splitlines())
    corpus_lines = [line.split()[0] for line in text.split("== valid.csv")[0].splitlines()
                    if line.strip().split()[0] in ("A", "B", "C")]
    assert corpus_lines == ["A", "B", "C"]  # merge order
    test = pd.read_csv(out / "test.csv")
    assert list(test["ID"]) == list(src["T1"]["ID"]) + list(src["T2"]["ID"])


def test_summary_of_empty_merge():
    result = merge([], [])
    assert "== train.csv: 0 clips, 0.00 h" in summarise(result)


def test_holdout_test_config_keeps_a_corpus_test_split_out_of_training(corpora, tmp_path, capsys):
    d, src = corpora
    cfg = tmp_path / "corpora.yaml"
    cfg.write_text("train: [A, B]\ntest: [T2]\nholdout_test: [A]\nsampling: {B: {weight: 0.5}}\n")
    assert merge_main(["--list-corpora", str(cfg)]) == 0
    assert capsys.readouterr().out.split() == ["A", "B", "T2"]
    out = tmp_path / "merged"
    assert merge_main(["--config", str(cfg), "--manifests", str(d), "--out", str(out)]) == 0
    train, _ = read_manifest(out / "train.csv")
    test, _ = read_manifest(out / "test.csv")
    a_test = set(src["A"].loc[src["A"]["Proportion"] == "test", "ID"])
    assert a_test and a_test <= set(test["ID"]) and not a_test & set(train["ID"])
    assert set(src["T2"]["ID"]) <= set(test["ID"])
    assert (train["ID"].str.startswith("B")).sum() == 10  # weight 0.5 of B's 20 training rows
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [A]\nholdout_test: [Z]\n")
    with pytest.raises(ValueError, match="not in the training list"):
        merge_main(["--config", str(bad), "--manifests", str(d), "--out", str(out)])


def test_default_lists_name_registered_corpora_of_the_right_use():
    from adf.data.corpora import get_corpus
    from adf.data.merge import TEST_MANIFESTS, TRAIN_MANIFESTS

    assert len(TRAIN_MANIFESTS) == 29 and len(TEST_MANIFESTS) == 5
    for name in TRAIN_MANIFESTS:
        assert get_corpus(name).name == name and get_corpus(name).use == "train", name
    for name in TEST_MANIFESTS:
        assert get_corpus(name).name == name and get_corpus(name).use == "test", name


def test_paper_stands_for_the_one_paper_list_in_every_config():
    """The recipes' paper configs name the lists kept in adf.data.merge, not copies."""
    import os

    from adf.data.merge import TEST_MANIFESTS, TRAIN_MANIFESTS, load_config

    recipes = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recipes")
    post = load_config(os.path.join(recipes, "posttrain", "conf", "paper.yaml"))
    ev = load_config(os.path.join(recipes, "evaluate", "conf", "paper.yaml"))
    assert post["train"] == list(TRAIN_MANIFESTS) and post["test"] == list(TEST_MANIFESTS)
    assert ev["train"] == [] and ev["test"] == list(TEST_MANIFESTS)


def test_bad_list_in_config_is_refused(tmp_path):
    from adf.data.merge import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("train: papers\n")
    with pytest.raises(ValueError, match="train must be a list of corpus names or `paper`"):
        load_config(cfg)


def test_valid_from_adds_only_the_validation_rows_of_another_corpus(corpora, tmp_path):
    d, src = corpora
    out = tmp_path / "merged"
    assert merge_main(["--manifests", str(d), "--out", str(out), "--train", "C", "--test",
                       "--holdout-test", "C", "--valid-from", str(d / "A.csv"), "--require-valid",
                       "--allow-empty"]) == 0  # (C has no test rows)
    train, _ = read_manifest(out / "train.csv")
    valid, _ = read_manifest(out / "valid.csv")
    assert sorted(train["ID"]) == sorted(src["C"]["ID"])
    assert list(valid["ID"]) == list(src["A"].loc[src["A"]["Proportion"] == "valid", "ID"])
    # C alone has no validation rows: --require-valid stops before writing anything
    empty = tmp_path / "empty"
    with pytest.raises(SystemExit, match="no validation rows"):
        merge_main(["--manifests", str(d), "--out", str(empty), "--train", "C", "--test", "--require-valid"])
    assert not empty.exists()
