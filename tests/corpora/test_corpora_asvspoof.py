"""ASVspoof 2019 LA, 2021 LA/DF and 5: protocol-driven preparers on miniature trees."""
import pytest
from corpus_tree import prepare, write_audio, write_text


def test_asvspoof2019_la(data_root):
    la = data_root / "ASVspoof2019-LA" / "LA"
    protocols = la / "ASVspoof2019_LA_cm_protocols"
    write_text(protocols / "ASVspoof2019.LA.cm.train.trn.txt",
               "LA_0079 LA_T_1000137 - A04 spoof\nLA_0079 LA_T_1000001 - - bonafide\n"
               "LA_0079 LA_T_1000002 - A01 spoof\nbroken line\n")
    write_text(protocols / "ASVspoof2019.LA.cm.dev.trl.txt", "LA_0069 LA_D_1047731 - - bonafide\n")
    write_text(protocols / "ASVspoof2019.LA.cm.eval.trl.txt", "LA_0001 LA_E_1000147 - A19 spoof\n")
    write_audio(la / "ASVspoof2019_LA_train/flac/LA_T_1000137.flac", 0.21)
    write_audio(la / "ASVspoof2019_LA_train/flac/LA_T_1000001.flac", 0.1)
    write_audio(la / "ASVspoof2019_LA_dev/flac/LA_D_1047731.flac", 0.3)
    write_audio(la / "ASVspoof2019_LA_eval/flac/LA_E_1000147.flac", 0.12, 16000, 2)
    df, skips = prepare("ASVspoof2019-LA", data_root)
    assert list(df["ID"]) == ["ASV19LA-LA_T_1000137", "ASV19LA-LA_T_1000001",
                              "ASV19LA-LA_D_1047731", "ASV19LA-LA_E_1000147"]
    assert list(df["Label"]) == ["fake", "real", "real", "fake"]
    assert list(df["Proportion"]) == ["train", "train", "valid", "test"]
    assert list(df["Attack"]) == ["A04", "-", "-", "A19"]
    assert list(df["Duration"]) == [0.21, 0.1, 0.3, 0.12]
    assert df.loc["ASV19LA-LA_E_1000147", "AudioChannel"] == 2
    assert set(df["Language"]) == {"EN"} and df.loc["ASV19LA-LA_D_1047731", "Speaker"] == "LA_0069"
    assert set(df["AudioEncoding"]) == {"FLAC"} and set(df["AudioBitSample"]) == {16}
    assert df.loc["ASV19LA-LA_T_1000137", "Path"] == \
        "$ROOT/ASVspoof2019-LA/LA/ASVspoof2019_LA_train/flac/LA_T_1000137.flac"
    # fixed quirk: the missing LA_T_1000002 is reported, not kept with Duration -1
    assert (df["Duration"] > 0).all()
    missing = str(la / "ASVspoof2019_LA_train/flac/LA_T_1000002.flac")
    assert "does not exist" in skips[missing]
    assert any(w.endswith("train.trn.txt:4") for w in skips)  # the malformed line


@pytest.mark.parametrize("track, key_place", [("LA", "beside"), ("LA", "keys"), ("DF", "root")])
def test_asvspoof2021(data_root, track, key_place):
    corpus = data_root / f"ASVspoof2021-{track}"
    flac = corpus / f"ASVspoof2021_{track}_eval" / "flac"
    p = track  # trial-ID prefix
    if track == "LA":
        lines = (f"LA_0009 {p}_E_9332881 alaw ita_tx A07 spoof notrim eval\n"
                 f"LA_0020 {p}_E_7294490 g722 loc_tx bonafide bonafide notrim progress\n"
                 f"LA_0021 {p}_E_0000001 none - A10 spoof notrim hidden\n"
                 f"LA_0022 {p}_E_0000002 none - A11 spoof notrim eval\n")
    else:
        lines = (f"LA_0023 {p}_E_9332881 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -\n"
                 f"TEF2 {p}_E_7294490 low_m4a vcc2020 bonafide bonafide notrim eval - - - - E\n"
                 f"TEF2 {p}_E_0000001 low_m4a vcc2020 Task1-team20 spoof notrim hidden "
                 f"neural_vocoder_nonautoregressive Task1 team20 FF E\n"
                 f"TEF2 {p}_E_0000002 low_m4a vcc2020 A11 spoof notrim eval - - - - E\n")
    key = {"beside": corpus / f"ASVspoof2021-{track}.txt",
           "keys": corpus / "keys" / track / "CM" / "trial_metadata.txt",
           "root": data_root / f"ASVspoof2021-{track}.txt"}[key_place]
    write_text(key, lines)
    for trial in ("9332881", "7294490", "0000001"):
        write_audio(flac / f"{p}_E_{trial}.flac", 0.1, 16000)
    df, skips = prepare(f"ASVspoof2021-{track}", data_root)
    prefix = f"ASV21{track}"
    assert list(df["ID"]) == [f"{prefix}-{p}_E_9332881", f"{prefix}-{p}_E_7294490", f"{prefix}-{p}_E_0000001"]
    assert list(df["Label"]) == ["fake", "real", "fake"]
    assert df["Attack"].iloc[1] == "bonafide"
    assert df["Attack"].iloc[2] == ("A10" if track == "LA" else "Task1-team20")
    assert set(df["Proportion"]) == {"test"}  # every subset (eval, progress, hidden) kept
    assert list(skips) == [str(flac / f"{p}_E_0000002.flac")]


def test_asvspoof2021_without_key_names_the_places_it_looked(data_root):
    (data_root / "ASVspoof2021-LA" / "ASVspoof2021_LA_eval").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="ASVspoof2021-LA.txt.*--meta"):
        prepare("ASVspoof2021-LA", data_root)


@pytest.mark.parametrize("layout", ["reference", "official"])
def test_asvspoof5(data_root, layout):
    top = data_root / "ASVspoof5"
    write_text(top / "ASVspoof5.train.tsv",
               "T_4850 T_0000000000 F - - - AC1 A05 spoof -\nT_4851 T_0000000001 M - - - - bonafide bonafide -\n")
    write_text(top / "ASVspoof5.dev.track_1.tsv",
               "D_0062 D_0000000001 F - - - AC1 A11 spoof -\nD_0461 D_0000000190 M - - - - bonafide bonafide -\n")
    write_text(top / "ASVspoof5.eval.track_1.tsv", "E_1607 E_0009538969 M C05 2 E_0009486171 AC1 A26 spoof -\n")
    folders = {"T": "flac_T", "D": "flac_D", "E": "flac_E_eval"}
    splits = {"T": "train", "D": "dev", "E": "eval"}
    for name in ("T_0000000000", "T_0000000001", "D_0000000001", "D_0000000190", "E_0009538969"):
        sub = folders[name[0]]
        where = top / f"ASVspoof5_{splits[name[0]]}" / sub if layout == "reference" else top / sub
        write_audio(where / f"{name}.flac", 0.15)
    df, skips = prepare("ASVspoof5", data_root)
    # fixed quirk: the first trial of every protocol is kept
    assert list(df["ID"]) == ["ASV5-A05-T_0000000000", "ASV5-bonafide-T_0000000001", "ASV5-A11-D_0000000001",
                              "ASV5-bonafide-D_0000000190", "ASV5-A26-E_0009538969"]
    assert list(df["Label"]) == ["fake", "real", "fake", "real", "fake"]
    assert list(df["Proportion"]) == ["train", "train", "valid", "valid", "test"]
    assert list(df["Attack"]) == ["A05", "bonafide", "A11", "bonafide", "A26"]
    assert list(df["Speaker"]) == ["T_4850", "T_4851", "D_0062", "D_0461", "E_1607"]
    assert skips == {}
