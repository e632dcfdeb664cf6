"""The test sets (FoR, FoR-norm, In-the-Wild, DEEP-VOICE, ADD2023, Deepfake-Eval-2024),
WildSVDD and the embedded egs corpus, on miniature trees."""
import pytest
from corpus_tree import prepare, write_audio, write_text


@pytest.mark.parametrize("name, folder, prefix", [("FakeOrReal", "for-original", "FoR"),
                                                  ("FakeOrReal-norm", "for-norm", "FoRnorm")])
def test_fake_or_real(data_root, name, folder, prefix):
    top = data_root / "FakeOrReal" / folder
    write_audio(top / "training/real/file4.wav_16k.wav_norm.wav_mono.wav_silence.wav", 0.1)
    write_audio(top / "training/fake/file20440.mp3", 0.3, 22050, 2)
    write_audio(top / "validation/real/file5.wav", 0.2, 48000)
    write_audio(top / "testing/fake/file6.wav", 0.1)
    (top / "testing/fake/file16643.mp3").write_bytes(b"\xff\xfb" + b"\x00" * 50)  # unreadable
    write_audio(top / "testing/other/file7.wav", 0.1)  # neither real nor fake
    df, skips = prepare(name, data_root)
    assert sorted(df["ID"]) == sorted([
        f"{prefix}-training-real-file4.wav_16k.wav_norm.wav_mono.wav_silence",
        f"{prefix}-training-fake-file20440", f"{prefix}-validation-real-file5", f"{prefix}-testing-fake-file6"])
    row = df.loc[f"{prefix}-training-fake-file20440"]
    assert (row["Label"], row["AudioEncoding"], row["AudioBitSample"], row["AudioChannel"]) == ("fake", "MP3", 0, 2)
    assert row["SampleRate"] == 22050 and row["Proportion"] == "train"
    assert df.loc[f"{prefix}-validation-real-file5", "Proportion"] == "valid"
    assert df.loc[f"{prefix}-validation-real-file5", "Duration"] == 0.2
    assert set(skips) == {str(top / "testing/fake/file16643.mp3"), str(top / "testing/other/file7.wav")}


def test_in_the_wild(data_root):
    top = data_root / "In-the-Wild" / "release_in_the_wild"
    write_text(top / "meta.csv", 'file,speaker,label\n0.wav,Alec Guinness,spoof\n'
               '1.wav,"Smith, Will",bona-fide\n2.wav,Barack Obama,bona-fide\n3.wav,X,unknown\n')
    write_audio(top / "0.wav", 0.1)
    write_audio(top / "1.wav", 0.25)
    write_audio(top / "3.wav", 0.1)
    df, skips = prepare("In-the-Wild", data_root)
    assert list(df["ID"]) == ["ItW-0", "ItW-1"]
    assert list(df["Label"]) == ["fake", "real"] and list(df["Duration"]) == [0.1, 0.25]
    assert df.loc["ItW-1", "Speaker"] == "Smith, Will"
    # fixed quirk: the listed but missing 2.wav is reported, not kept with Duration -1
    assert "does not exist" in skips[str(top / "2.wav")]
    assert "bona-fide or spoof" in skips[f"{top / 'meta.csv'}:5"]


def test_add2023(data_root):
    top = data_root / "ADD2023" / "Track1.2" / "testR2"
    write_text(top / "label.txt", "ADD2023_T1.2R2_E_00000003.wav genuine\nADD2023_T1.2R2_E_00000004.wav fake\n"
                                  "ADD2023_T1.2R2_E_00000005.wav fake\n")
    write_audio(top / "wav/ADD2023_T1.2R2_E_00000003.wav", 0.1)
    write_audio(top / "wav/ADD2023_T1.2R2_E_00000004.wav", 0.2, 8000)
    df, skips = prepare("ADD2023", data_root)
    # fixed quirks: no `.wav` in the ID, missing file reported
    assert list(df["ID"]) == ["ADD2023-ADD2023_T1.2R2_E_00000003", "ADD2023-ADD2023_T1.2R2_E_00000004"]
    assert list(df["Label"]) == ["real", "fake"] and set(df["Proportion"]) == {"test"}
    assert list(df["SampleRate"]) == [16000, 8000] and set(df["Language"]) == {"ZH"}
    assert list(skips) == [str(top / "wav/ADD2023_T1.2R2_E_00000005.wav")]


@pytest.mark.parametrize("where", ["AUDIO_SEGMENTS", "KAGGLE/AUDIO_SEGMENTS"])
def test_deepvoice_segment_files(data_root, where):
    seg = data_root / "DeepVoice" / where
    write_audio(seg / "FAKE/biden-to-taylor_seg_62.wav", 0.2, 44100, 2)
    write_audio(seg / "REAL/biden-original_seg_1.wav", 0.1, 44100)
    df, skips = prepare("DeepVoice", data_root)
    assert list(df["ID"]) == ["DeepVoice-VC_biden-to-taylor_seg_62", "DeepVoice-VC_biden-original_seg_1"]
    assert list(df["Label"]) == ["fake", "real"]
    assert list(df["Attack"]) == ["VC", "-"]  # fixed: originals are not voice conversion
    assert list(df["Start"]) == [0, 0] and list(df["Stop"]) == [8820, 4410]
    assert list(df["AudioChannel"]) == [2, 1] and skips == {}


def test_deepvoice_log_replay(data_root):
    top = data_root / "DeepVoice"
    write_audio(top / "KAGGLE/AUDIO/FAKE/obama-to-biden.wav", 0.1, 44100, 2)  # 4410 samples
    write_audio(top / "KAGGLE/AUDIO/REAL/biden-original.wav", 0.05, 44100)  # 2205 samples
    saved = "Saved: /x/DeepVoice/AUDIO_SEGMENTS/FAKE/obama-to-biden_seg_{}.wav\n"
    write_text(top / "segments.log",
               "Audio: obama-to-biden_seg_1, start at: 0, end at: 3000\n" + saved.format(1)
               + "Audio: obama-to-biden_seg_2, start at: 2000, end at: 9999\n" + saved.format(2)
               + "Audio: obama-to-biden_seg_3, start at: 5000, end at: 6000\n" + saved.format(3)
               + "Audio: biden-original_seg_1, start at: -5, end at: 2205\n"
               + "Audio: trump-original_seg_1, start at: 0, end at: 100\nDone.\n")
    df, skips = prepare("DeepVoice", data_root)
    assert list(df["ID"]) == ["DeepVoice-VC_obama-to-biden_seg_1", "DeepVoice-VC_obama-to-biden_seg_2",
                              "DeepVoice-VC_biden-original_seg_1"]
    assert list(df["Start"]) == [0, 2000, 0] and list(df["Stop"]) == [3000, 4410, 2205]
    assert list(df["Duration"]) == [round(3000 / 44100, 2), round(2410 / 44100, 2), 0.05]
    assert set(df["Path"]) == {"$ROOT/DeepVoice/KAGGLE/AUDIO/FAKE/obama-to-biden.wav",
                               "$ROOT/DeepVoice/KAGGLE/AUDIO/REAL/biden-original.wav"}
    assert "outside the file" in skips[str(top / "KAGGLE/AUDIO/FAKE/obama-to-biden.wav")]
    assert "does not exist" in skips[str(top / "KAGGLE/AUDIO/REAL/trump-original.wav")]


def _dfe_tree(data_root):
    top = data_root / "Deepfake-Eval-2024"
    write_text(top / "audio-metadata-publish.csv",
               "Filename,Date,Ground Truth,Public Comments,Finetuning Set\n"
               "kIZg7_0016.wav,2024-04-23, Fake ,dupe,Train\n"
               "b.flac,2024-04-24,Real,,test\n"
               "c.m4a,2024-04-25,Real,,Test\n"
               "d.wav,2024-04-25,Unknown,,Test\n"
               "e.wav,2024-04-25,Real,,Test\n")
    write_audio(top / "audio-data/kIZg7_0016.wav", 0.25)  # 4000 samples
    write_audio(top / "audio-data/b.flac", 0.1, 8000, 2)  # 800 samples
    (top / "audio-data/c.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 40)
    write_audio(top / "audio-data/d.wav", 0.1)
    return top


def test_deepfake_eval_2024_fixed_segments(data_root):
    top = _dfe_tree(data_root)
    df, skips = prepare("Deepfake-Eval-2024", data_root, segment_seconds=0.1)
    # L = 1600 samples at 16 kHz: 4000 -> [0,1600) [1600,3200) [3200,4000); 800 at 8 kHz -> one whole
    assert list(df["ID"]) == ["DFE2024-kIZg7_0016_seg1", "DFE2024-kIZg7_0016_seg2",
                              "DFE2024-kIZg7_0016_seg3", "DFE2024-b_seg1"]
    assert list(df["Start"]) == [0, 1600, 3200, 0] and list(df["Stop"]) == [1600, 3200, 4000, 800]
    assert list(df["Duration"]) == [0.1, 0.1, 0.05, 0.1]
    assert list(df["Label"]) == ["fake"] * 3 + ["real"]
    assert list(df["Proportion"]) == ["train"] * 3 + ["test"]
    assert set(skips) == {str(top / "audio-data/c.m4a"), f"{top / 'audio-metadata-publish.csv'}:5",
                          str(top / "audio-data/e.wav")}
    assert "cannot decode audio" in skips[str(top / "audio-data/c.m4a")]


def test_deepfake_eval_2024_defaults_and_whole_files(data_root):
    _dfe_tree(data_root)
    df, _ = prepare("Deepfake-Eval-2024", data_root)  # default 4 s: each short file is one segment
    assert list(df["ID"]) == ["DFE2024-kIZg7_0016_seg1", "DFE2024-b_seg1"] and list(df["Stop"]) == [4000, 800]
    whole, _ = prepare("Deepfake-Eval-2024", data_root, segment_seconds=0)
    assert list(whole["ID"]) == ["DFE2024-kIZg7_0016", "DFE2024-b"] and list(whole["Duration"]) == [0.25, 0.1]


def test_wildsvdd(data_root):
    top = data_root / "WildSVDD" / "WildSVDD_Data_Sep2024_Processed"
    write_audio(top / "train/mixture/bonafide_Salibi_1.flac", 0.1, 44100, 2)
    write_audio(top / "test_B/vocals/bonafide_Salibi_1.flac", 0.1)
    write_audio(top / "test_A/vocals/deepfake_Song_3.flac", 0.2)
    write_audio(top / "test_A/vocals/other_Song_4.flac", 0.2)
    df, skips = prepare("WildSVDD", data_root)
    assert sorted(df["ID"]) == ["WildSVDD-test_A-vocals-deepfake_Song_3", "WildSVDD-test_B-vocals-bonafide_Salibi_1",
                                "WildSVDD-train-mixture-bonafide_Salibi_1"]
    assert df.loc["WildSVDD-test_A-vocals-deepfake_Song_3", "Label"] == "fake"
    assert df.loc["WildSVDD-train-mixture-bonafide_Salibi_1", "Proportion"] == "train"
    assert df.loc["WildSVDD-test_B-vocals-bonafide_Salibi_1", "Proportion"] == "test"
    assert set(df["Language"]) == {"-"}  # fixed: not the subset name
    assert list(skips) == [str(top / "test_A/vocals/other_Song_4.flac")]


def test_egs(data_root):
    outside = write_audio(data_root.parent / "elsewhere.wav", 0.1)
    write_audio(data_root / "wav/real/a.wav", 0.2)
    write_audio(data_root / "wav/fake/a.wav", 0.1, 24000)
    write_text(data_root / "metadata.csv", "file,label,speaker,split,source,attack,language\n"
               "wav/real/a.wav,real,spk1,train,vctk,,en\nwav/fake/a.wav,fake,spk1,dev,vctk,hifigan,en\n"
               "wav/fake/a.wav,fake,spk1,test,vctk,hifigan,en\nwav/real/a.wav,maybe,spk1,test,vctk,,en\n"
               f"{outside},real,spk2,test,vctk,,en\n")
    df, skips = prepare("egs", data_root)
    assert list(df["ID"]) == ["EGS-wav_real_a", "EGS-wav_fake_a"]
    assert list(df["Proportion"]) == ["train", "valid"] and list(df["Attack"]) == ["-", "hifigan"]
    assert list(df["Path"]) == ["$ROOT/wav/real/a.wav", "$ROOT/wav/fake/a.wav"]
    assert set(df["Language"]) == {"EN"} and list(df["SampleRate"]) == [16000, 24000]
    # a repeated row keeps its first copy and reports the second (the reference merge dropped both)
    assert skips[str(data_root / "wav/fake/a.wav")].startswith("duplicate ID EGS-wav_fake_a")
    assert "real|fake" in skips[f"{data_root / 'metadata.csv'}:5"]
    assert skips[str(outside)].startswith("outside the data root")


def test_any_corpus_can_be_segmented_on_request(data_root):
    write_audio(data_root / "ADD2023/Track1.2/testR2/wav/x.wav", 0.25)
    write_text(data_root / "ADD2023/Track1.2/testR2/label.txt", "x.wav fake\n")
    whole, _ = prepare("ADD2023", data_root)
    assert "Start" not in whole.columns and list(whole["ID"]) == ["ADD2023-x"]
    cut, _ = prepare("ADD2023", data_root, segment_seconds=0.2)
    assert list(cut["ID"]) == ["ADD2023-x_seg1", "ADD2023-x_seg2"]
    assert list(cut["Start"]) == [0, 3200] and list(cut["Stop"]) == [3200, 4000]
    assert list(cut["Duration"]) == [0.2, 0.05]
