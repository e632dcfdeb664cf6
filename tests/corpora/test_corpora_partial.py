"""Partially fake corpora (PartialSpoof, HAD) on miniature trees, and the FakeRegions column."""
import pickle

import numpy as np
import pandas as pd
import pytest
from corpus_tree import prepare, write_audio, write_text

from adf.data.corpora.partialspoof import read_label_dict
from adf.data.manifest import ManifestError, read_manifest, write_manifest
from adf.localisation.regions import parse_regions, segment_labels


def _seglab(path, labels):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, {k: np.array(list(v)) for k, v in labels.items()})  # as published: '1' real, '0' spoof


def test_partialspoof(data_root):
    top = data_root / "PartialSpoof" / "database"
    protocols = top / "protocols" / "PartialSpoof_LA_cm_protocols"
    write_text(protocols / "PartialSpoof.LA.cm.train.trl.txt",
               "LA_0079 CON_T_0000001 - - spoof\nLA_0079 LA_T_0000002 - - bonafide\n"
               "LA_0080 CON_T_0000003 - A05 spoof\n")
    write_text(protocols / "PartialSpoof.LA.cm.eval.trl.txt", "LA_0001 CON_E_0000004 - - spoof\n")
    write_audio(top / "train/con_wav/CON_T_0000001.wav", 0.1)
    write_audio(top / "train/con_wav/LA_T_0000002.wav", 0.1)
    write_audio(top / "train/con_wav/CON_T_0000003.wav", 0.1)
    write_audio(top / "eval/con_wav/CON_E_0000004.wav", 0.2)
    # 10 ms labels: spoof at 20-50 ms and 80-100 ms; the coarser file is ignored when 0.01 exists
    _seglab(top / "segment_labels/train_seglab_0.01.npy", {"CON_T_0000001": "1100011100", "LA_T_0000002": "1" * 10})
    _seglab(top / "segment_labels/train_seglab_0.16.npy", {"CON_T_0000001": "0"})
    # eval: only the 0.02 file
    _seglab(top / "segment_labels/eval_seglab_0.02.npy", {"CON_E_0000004": "1111100000"})
    df, skips = prepare("PartialSpoof", data_root)
    assert list(df["ID"]) == ["PartialSpoof-CON_T_0000001", "PartialSpoof-LA_T_0000002",
                              "PartialSpoof-CON_T_0000003", "PartialSpoof-CON_E_0000004"]
    assert list(df["Label"]) == ["fake", "real", "fake", "fake"]
    assert list(df["FakeRegions"]) == ["0.020-0.050;0.080-0.100", "", "", "0.100-0.200"]
    assert list(df["Proportion"]) == ["train", "train", "train", "test"]
    assert df.loc["PartialSpoof-CON_T_0000003", "Attack"] == "A05"
    assert "protocol file not found" in skips[str(protocols / "PartialSpoof.LA.cm.dev.trl.txt")]
    # the published coarser labels follow from the regions with the "any" rule
    regions = parse_regions(df.loc["PartialSpoof-CON_T_0000001", "FakeRegions"])
    assert segment_labels(regions, 0.1, 0.04).tolist() == [0, 0, 0]
    assert segment_labels(regions, 0.1, 0.02).tolist() == [1, 0, 0, 1, 0]


def test_partialspoof_labels_refuse_other_pickles(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, {"a": np.array(["1", "0"])})
    assert read_label_dict(good)["a"].tolist() == ["1", "0"]

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    bad = tmp_path / "bad.npy"
    np.save(bad, np.array({"a": Evil()}, dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        read_label_dict(bad)
    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros(3))
    with pytest.raises(ValueError, match="expected a pickled dict"):
        read_label_dict(plain)
    assert pickle  # (the evil file really is a pickle: np.load(allow_pickle=True) would run it)


def test_had(data_root):
    top = data_root / "HAD"
    write_text(top / "HAD_train/HAD_train_label.txt",
               "HAD_train_fake_00000001 0.00-0.05-T/0.05-0.08-F/0.08-0.10-T 0\n"
               "HAD_train_real_00000002 0.00-0.10-T 1\n"
               "HAD_train_fake_00000003 0.00-0.10-T 0\n"          # fake without an F segment
               "HAD_train_fake_00000004 0.00-0.05-X 0\n")         # unreadable segment
    write_audio(top / "HAD_train/conbine/HAD_train_fake_00000001.wav", 0.1)
    write_audio(top / "HAD_train/real/HAD_train_real_00000002.wav", 0.1)
    write_text(top / "HAD_test/HAD_test_label.txt", "HAD_test_fake_00000005 0.00-0.05-F/0.05-0.20-T 0\n")
    write_audio(top / "HAD_test/test/HAD_test_fake_00000005.wav", 0.2)
    df, skips = prepare("HAD", data_root)
    assert list(df["ID"]) == ["HAD-HAD_train_fake_00000001", "HAD-HAD_train_real_00000002",
                              "HAD-HAD_test_fake_00000005"]
    assert list(df["Label"]) == ["fake", "real", "fake"]
    assert list(df["FakeRegions"]) == ["0.050-0.080", "", "0.000-0.050"]
    assert list(df["Proportion"]) == ["train", "train", "test"] and set(df["Language"]) == {"ZH"}
    label_file = top / "HAD_train/HAD_train_label.txt"
    assert "does not agree" in skips[f"{label_file}:3"] and "start-end-T|F" in skips[f"{label_file}:4"]


def test_fake_regions_column_is_validated_and_kept(tmp_path):
    rows = pd.DataFrame({
        "ID": ["a", "b", "c"], "Label": ["fake", "real", "real"], "Duration": [1.0] * 3,
        "SampleRate": [16000] * 3, "Path": ["x.wav"] * 3, "Attack": ["-"] * 3, "Speaker": ["-"] * 3,
        "Proportion": ["-"] * 3, "AudioChannel": [1] * 3, "AudioEncoding": ["PCM_16"] * 3,
        "AudioBitSample": [16] * 3, "Language": ["-"] * 3, "FakeRegions": ["0.1-0.2", "", ""]})
    path = tmp_path / "m.csv"
    write_manifest(rows, path)
    df, _ = read_manifest(path)
    assert list(df["FakeRegions"]) == ["0.1-0.2", "", ""]
    rows.loc[1, "FakeRegions"] = "0.3-0.4"  # a real row with fake regions
    rows.loc[2, "FakeRegions"] = "0.5-0.4"  # end before start
    write_manifest(rows, path)
    with pytest.raises(ManifestError) as err:
        read_manifest(path)
    assert [p.split(": ")[0] for p in err.value.problems] == ["row 3, column FakeRegions", "row 4, column FakeRegions"]


def test_egs_partial_on_the_committed_corpus():
    """The committed spliced clips: every row fake, regions inside the clip, boundaries as built."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "egs_data"
    df, skips = prepare("egs_partial", root)
    meta = pd.read_csv(root / "partial" / "metadata.csv", dtype=str, keep_default_na=False)
    assert not skips and len(df) == len(meta) >= 8
    assert set(df["Label"]) == {"fake"} and set(df["Proportion"]) == {"train", "valid", "test"}
    for row in df.itertuples():
        regions = parse_regions(row.FakeRegions)
        assert regions and regions[-1][1] <= row.Duration + 0.01, row.ID
    assert list(df["FakeRegions"]) == list(meta["fake_regions"])


def test_merge_keeps_fake_regions(tmp_path):
    """Merging a partially fake corpus with a whole-utterance one keeps FakeRegions (empty elsewhere)."""
    from adf.data.merge import merge, write_merge

    def table(prefix, regions):
        return pd.DataFrame({
            "ID": [f"{prefix}-{i}" for i in range(len(regions))], "Label": ["fake"] * len(regions),
            "Duration": [1.0] * len(regions), "SampleRate": [16000] * len(regions),
            "Path": [f"$ROOT/{prefix}{i}.wav" for i in range(len(regions))], "Attack": ["-"] * len(regions),
            "Speaker": ["-"] * len(regions), "Proportion": ["train"] * len(regions),
            "AudioChannel": [1] * len(regions), "AudioEncoding": ["PCM_16"] * len(regions),
            "AudioBitSample": [16] * len(regions), "Language": ["-"] * len(regions), "FakeRegions": regions})

    write_manifest(table("P", ["0.100-0.200", "0.300-0.400"]), tmp_path / "P.csv")
    whole = table("W", [""]).drop(columns="FakeRegions")
    write_manifest(whole, tmp_path / "W.csv")
    write_merge(merge([("P", tmp_path / "P.csv"), ("W", tmp_path / "W.csv")], []), tmp_path / "out",
                allow_empty=True)
    df, problems = read_manifest(tmp_path / "out" / "train.csv")
    assert problems == []
    assert dict(zip(df["ID"], df["FakeRegions"])) == {"P-0": "0.100-0.200", "P-1": "0.300-0.400", "W-0": ""}
