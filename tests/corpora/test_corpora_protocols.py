"""Metadata-driven training corpora: DECRO, DSD, SpoofCeleb, Codecfake (Xie et al.)."""
import pytest
from corpus_tree import prepare, write_audio, write_text


def test_decro(data_root):
    base = data_root / "DECRO" / "petrichorwq-DECRO-dataset-6fc9884"
    write_text(base / "ch_train.txt", "G0019 T0055G0019S0420 - aidatatang bonafide  \nunknown 20032123 - baidu spoof\n")
    write_text(base / "ch_dev.txt", "G0019 T0055G0019S0420 - aidatatang bonafide\n")
    write_text(base / "en_eval.txt", "p225 E1 - vits spoof \n\np226 E2 - vctk bonafide\n")
    for sub, fid in [("ch_train", "T0055G0019S0420"), ("ch_train", "20032123"), ("ch_dev", "T0055G0019S0420"),
                     ("en_eval", "E1")]:
        write_audio(base / sub / f"{fid}.wav", 0.1)
    df, skips = prepare("DECRO", data_root)
    assert list(df["ID"]) == ["DECRO-train-ZH-T0055G0019S0420", "DECRO-train-ZH-20032123",
                              "DECRO-valid-ZH-T0055G0019S0420", "DECRO-test-EN-E1"]
    assert list(df["Label"]) == ["real", "fake", "real", "fake"]
    assert list(df["Attack"]) == ["aidatatang", "baidu", "aidatatang", "vits"]
    assert list(df["Language"]) == ["ZH", "ZH", "ZH", "EN"]
    assert df["Path"].iloc[0] == "$ROOT/DECRO/petrichorwq-DECRO-dataset-6fc9884/ch_train/T0055G0019S0420.wav"
    assert str(base / "en_eval/E2.wav") in skips  # missing audio reported
    assert sum("protocol file not found" in r for r in skips.values()) == 3  # en_train, en_dev, ch_eval


def test_dsd(data_root):
    header = ("Utterence name (file name),TTS or VC,Is multi-speaker?,Language,Noise type 1,Source link,utt,"
              "group,Speaker name,Gender,Age,label,Model,subset,duration\n")
    write_text(data_root / "DSD_corpus_v1.csv", header
               + "09MKIS0040_12815.wav,-,No,Korean,-,-,09MKIS0040_12815,AIHUB,09MKIS0040,Male,Adult,bonafide,-,train,6.25\n"
               + "12MWKH0048_000026.wav,TTS,No,Korean,-,-,x,VITS-AIHUB,12MWKH0048,Male,Adult,spoof,VITS,eval,1.5\n"
               + "p225_001.wav,-,No,English,-,-,x,VCTK,p225,F,Adult,bonafide,-,dev,1\n"
               + "jvs_1.wav,VC,No,Japanese,-,-,x,JVS,jvs001,F,Adult,spoof,RVC,train,1\n"
               + "x_1.wav,VC,No,Thai,-,-,x,X,x1,F,Adult,spoof,RVC,train,1\n"
               + "y_1.wav,VC,No,Korean,-,-,x,X,y1,F,Adult,spoofed,RVC,train,1\n")
    for name in ("09MKIS0040_12815", "12MWKH0048_000026", "p225_001", "x_1"):
        write_audio(data_root / "DSD" / f"{name}.wav", 0.1)
    df, skips = prepare("DSD", data_root)
    # fixed quirk: the first data row (09MKIS0040_12815) is kept
    assert list(df["ID"]) == ["DSD-09MKIS0040_12815", "DSD-12MWKH0048_000026", "DSD-p225_001", "DSD-x_1"]
    assert list(df["Label"]) == ["real", "fake", "real", "fake"]
    assert list(df["Proportion"]) == ["train", "test", "valid", "train"]
    assert list(df["Language"]) == ["KO", "KO", "EN", "Thai"]
    assert list(df["Attack"]) == ["-", "VITS", "-", "RVC"]
    assert df.loc["DSD-12MWKH0048_000026", "Speaker"] == "12MWKH0048"
    assert str(data_root / "DSD/jvs_1.wav") in skips
    assert "unknown label 'spoofed'" in skips[f"{data_root / 'DSD_corpus_v1.csv'}:7"]


def test_spoofceleb(data_root):
    top = data_root / "SpoofCeleb" / "spoofceleb"
    write_text(top / "metadata/train.csv", "file,speaker,attack\na00/id1/v1-00001-001.flac,id1,a00\n"
               "a01/id1/v1-00001-001.flac,id1,a01\na02/id1/gone.flac,id1,a02\n")
    write_text(top / "metadata/development.csv", "file,speaker,attack\na00/id10318/YYsxcZ5saac-00002-006.flac,id10318,a00\n")
    write_audio(top / "flac/train/a00/id1/v1-00001-001.flac", 0.1)
    write_audio(top / "flac/train/a01/id1/v1-00001-001.flac", 0.2)
    write_audio(top / "flac/development/a00/id10318/YYsxcZ5saac-00002-006.flac", 0.1)
    df, skips = prepare("SpoofCeleb", data_root)
    # fixed quirk: no `/` inside IDs
    assert list(df["ID"]) == ["SpoofCeleb-a00_id1_v1-00001-001", "SpoofCeleb-a01_id1_v1-00001-001",
                              "SpoofCeleb-a00_id10318_YYsxcZ5saac-00002-006"]
    assert list(df["Label"]) == ["real", "fake", "real"] and list(df["Attack"]) == ["a00", "a01", "a00"]
    assert list(df["Proportion"]) == ["train", "train", "valid"] and set(df["Speaker"]) == {"id1", "id10318"}
    assert str(top / "flac/train/a02/id1/gone.flac") in skips
    assert "metadata file not found" in skips[str(top / "metadata/evaluation.csv")]


@pytest.mark.parametrize("c7_place", ["C7", "test/C7"])
def test_codecfake_xie(data_root, c7_place):
    top = data_root / "Codecfake"
    write_text(top / "label/train.txt", "SSB13650058.wav real 0\nF01_SSB13650058.wav fake 1\nF02_SSB13650058.wav fake 2\n")
    write_text(top / "label/dev.txt", "SSB00010001.wav real 0\nF03_SSB00010001.wav fake 3\n")
    write_text(top / "label/C7.txt", "F07_p225_001.wav fake 7\nX_p225_001.wav odd 7\n")
    for name in ("SSB13650058", "F01_SSB13650058", "F02_SSB13650058"):
        write_audio(top / f"train/{name}.wav", 0.1)
    write_audio(top / "dev/SSB00010001.wav", 0.1)
    write_audio(top / c7_place / "F07_p225_001.wav", 0.1)
    df, skips = prepare("Codecfake-Xie", data_root)
    # fixed quirk: the first line of every label file is kept
    assert list(df["ID"]) == ["CodecfakeXie-SSB13650058", "CodecfakeXie-F01_SSB13650058",
                              "CodecfakeXie-F02_SSB13650058", "CodecfakeXie-SSB00010001", "CodecfakeXie-F07_p225_001"]
    assert list(df["Label"]) == ["real", "fake", "fake", "real", "fake"]
    assert list(df["Attack"]) == ["-", "F01", "F02", "-", "F07"]
    assert list(df["Proportion"]) == ["train", "train", "train", "valid", "test"]
    assert str(top / "dev/F03_SSB00010001.wav") in skips
    assert "real or fake" in skips[f"{top / 'label/C7.txt'}:2"]
