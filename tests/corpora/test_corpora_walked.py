"""Walked training corpora (no metadata): label, split, speaker and IDs from the folder layout."""
import pytest
from corpus_tree import prepare, write_audio


def _make(root, files):
    """files: {relative path: (seconds, sr, channels)} or {relative path: None} for a 0.1 s mono 16 kHz tone."""
    for rel, spec in files.items():
        write_audio(root / rel, *(spec or (0.1,)))


def test_cfad(data_root):
    top = data_root / "CFAD" / "CFAD"
    _make(top, {"clean_version/train_clean/fake_clean/hifigan/SSB1_hifigan.wav": None,
                "clean_version/dev_clean/real_clean/aishell1/SSB2.wav": None,
                "codec_version/test_seen_codec/fake_codec/lpcnet/SSB09660003_lpcnet_m4a.wav": None,
                "codec_version/test_unseen_codec/fake_codec/lpcnet/SSB09660003_lpcnet_m4a.wav": None,
                "noisy_version/misplaced.wav": None})
    df, skips = prepare("CFAD", data_root)
    # fixed: test_seen / test_unseen stay apart, so identical stems do not collide
    assert sorted(df["ID"]) == ["CFAD-clean_version-train-fake-SSB1_hifigan", "CFAD-clean_version-valid-real-SSB2",
                                "CFAD-codec_version-test_seen-fake-SSB09660003_lpcnet_m4a",
                                "CFAD-codec_version-test_unseen-fake-SSB09660003_lpcnet_m4a"]
    row = df.loc["CFAD-codec_version-test_seen-fake-SSB09660003_lpcnet_m4a"]
    assert (row["Proportion"], row["Attack"], row["Speaker"], row["Language"]) == ("test", "lpcnet", "SSB09660003", "ZH")
    assert df.loc["CFAD-clean_version-valid-real-SSB2", ["Label", "Attack", "Proportion"]].tolist() == \
        ["real", "aishell1", "valid"]
    assert list(skips) == [str(top / "noisy_version/misplaced.wav")]


def test_dfadd(data_root):
    top = data_root / "DFADD"
    _make(top, {"DATASET_VCTK_BONAFIDE/train/p225_001.wav": None, "DATASET_PflowTTS/valid/p345_251_pflow.wav": None,
                "DATASET_MatchaTTS/test/p226_002_matcha.flac": (0.2, 22050)})
    df, _ = prepare("DFADD", data_root)
    assert df.loc["DFADD-DATASET_VCTK_BONAFIDE-p225_001", ["Label", "Proportion", "Speaker"]].tolist() == \
        ["real", "train", "p225"]
    assert df.loc["DFADD-DATASET_PflowTTS-p345_251_pflow", ["Label", "Proportion", "Attack"]].tolist() == \
        ["fake", "valid", "DATASET_PflowTTS"]
    assert df.loc["DFADD-DATASET_MatchaTTS-p226_002_matcha", "SampleRate"] == 22050


def test_diffusion_deepfake(data_root):
    _make(data_root / "DiffusionDeepfake", {"tacotron2-DCA_wavegrad/LJ044-0144.wav": None, "DiffGAN-TTS_aux/a_b.wav": None})
    df, _ = prepare("DiffusionDeepfake", data_root)
    assert set(df["Label"]) == {"fake"}
    # fixed: Speaker has no extension
    assert df.loc["DiffFake-tacotron2-DCA_wavegrad-LJ044-0144", ["Attack", "Speaker"]].tolist() == \
        ["tacotron2-DCA_wavegrad", "LJ044-0144"]
    assert df.loc["DiffFake-DiffGAN-TTS_aux-a_b", "Speaker"] == "a"


def test_diffssd(data_root):
    _make(data_root / "DiffSSD", {"generated_speech/your_tts/speaker_1487/sentence_449.wav": None,
                                  "generated_speech/grad_tts/x1.wav": None, "real_speech/r1.wav": None})
    df, _ = prepare("DiffSSD", data_root)
    assert sorted(df["ID"]) == ["DiffSSD-grad_tts---EN-x1", "DiffSSD-your_tts-speaker_1487-EN-sentence_449"]
    assert df.loc["DiffSSD-your_tts-speaker_1487-EN-sentence_449", ["Attack", "Speaker"]].tolist() == \
        ["your_tts", "speaker_1487"]


def test_habla(data_root):
    top = data_root / "HABLA" / "FinalDataset_16khz"
    _make(top, {"Real/Chile/clf_07508/clf_07508_00799857148.wav": None,
                "CycleGAN/Venezuela-Argentina/vem_02484-arm_01523/CycleGAN-vem_02484_00993837010-arm_01523_020267.wav": None})
    (top / "Diff/Peru/p1").mkdir(parents=True)
    (top / "Diff/Peru/p1/broken.wav").write_bytes(b"RIFF")
    df, skips = prepare("HABLA", data_root)
    assert df.loc["HABLA-real-clf_07508_00799857148", ["Label", "Attack", "Speaker", "Language"]].tolist() == \
        ["real", "Real", "clf_07508", "ES"]
    fake = df.loc["HABLA-fake-CycleGAN-vem_02484_00993837010-arm_01523_020267"]
    assert (fake["Attack"], fake["Speaker"]) == ("CycleGAN", "vem_02484-arm_01523")
    assert list(skips) == [str(top / "Diff/Peru/p1/broken.wav")]  # fixed: reported, no abort


def test_mlaad(data_root):
    _make(data_root / "MLAAD_v5" / "fake", {"ga/tts_models_multilingual_multi-dataset_bark/silent_bullet_09_f000284.wav": None,
                                            "zh-cn/tts_models_zh-CN_baker_tacotron2-DDC-GST/a.wav": (0.1, 22050)})
    df, _ = prepare("MLAAD_v5", data_root)
    assert df.loc["MLAAD-ga-tts_models_multilingual_multi-dataset_bark-silent_bullet_09_f000284", "Language"] == "GA"
    assert df.loc["MLAAD-ZH-tts_models_zh-CN_baker_tacotron2-DDC-GST-a", ["Language", "SampleRate"]].tolist() == ["ZH", 22050]


def test_voicemos(data_root):
    top = data_root / "VoiceMOS" / "main" / "blizzard"
    rel = "blizzard_wavs_and_scores_2010_release_version_1/{}/submission_directory/news_2010_0095.wav"
    _make(top, {rel.format("A"): None, rel.format("N"): None})
    df, _ = prepare("VoiceMOS", data_root)
    ids = ["VoiceMOS-blizzard_wavs_and_scores_2010_release_version_1_A_submission_directory_news_2010_0095",
           "VoiceMOS-blizzard_wavs_and_scores_2010_release_version_1_N_submission_directory_news_2010_0095"]
    assert list(df["ID"]) == ids and list(df["Label"]) == ["real", "fake"]
    _make(top, {"blizzard_wavs_and_scores_2008_release_version_1/B/x.wav": None})
    again, _ = prepare("VoiceMOS", data_root)
    assert list(again["ID"][-2:]) == ids  # fixed: IDs do not shift when files are added


def test_cvoicefake(data_root):
    top = data_root / "CVoiceFake" / "CVoiceFake_Large"
    _make(top, {"DE/Bonafide/common_voice_de_36934985.mp3": (0.2, 48000),
                "CN/griffin_lim_generated/common_voice_zh_1_Gen.mp3": (0.2, 22050)})
    df, _ = prepare("CVoiceFake_Large", data_root)
    assert df.loc["CVoice-DE-Bonafide-common_voice_de_36934985", ["Label", "Attack", "Language", "AudioBitSample"]
                  ].tolist() == ["real", "Bonafide", "DE", 0]
    assert df.loc["CVoice-CN-griffin_lim_generated-common_voice_zh_1_Gen", ["Label", "Language"]].tolist() == ["fake", "ZH"]


@pytest.mark.parametrize("name, top, prefix, label, vocoder", [
    ("LibriTTS", "LibriTTS", "Libri", "real", None),
    ("LibriTTS-R", "LibriTTS-R", "LibriR", "fake", None),
    ("LibriTTS-Vocoded", "LibriTTS-Vocoded/hn_sinc_nsf_hifi", "LibriTTSVo", "fake", "hn_sinc_nsf_hifi")])
def test_libritts_family(data_root, name, top, prefix, label, vocoder):
    _make(data_root / top, {"dev-clean/1462/170138/1462_170138_000007_000001.wav": (0.1, 24000),
                            "train-other-500/20/205/20_205_000002_000000.wav": (0.1, 24000),
                            "test-clean/61/70968/61_70968_000000_000000.wav": (0.1, 24000)})
    df, _ = prepare(name, data_root)
    tag = f"{vocoder}-" if vocoder else ""
    ids = [f"{prefix}-{tag}{s}" for s in ("1462_170138_000007_000001", "61_70968_000000_000000", "20_205_000002_000000")]
    assert list(df["ID"]) == ids
    assert list(df["Proportion"]) == ["valid", "test", "train"] and list(df["Speaker"]) == ["1462", "61", "20"]
    assert set(df["Label"]) == {label} and set(df["Attack"]) == {vocoder or "-"}
    assert set(df["SampleRate"]) == {24000}


def test_ljspeech(data_root):
    _make(data_root / "LJSpeech" / "LJSpeech-1.1", {"wavs/LJ018-0006.wav": (0.1, 22050)})
    df, _ = prepare("LJSpeech", data_root)
    assert df.loc["LJ-LJ018-0006", ["Label", "Speaker", "SampleRate", "Proportion"]].tolist() == ["real", "LJ", 22050, "-"]


@pytest.mark.parametrize("name, top, prefix, label", [
    ("VoxCeleb2", "VoxCeleb2/dev/aac", "VoxCeleb2", "real"),
    ("VoxCeleb2-Vocoded", "VoxCeleb2-Vocoded/hifigan/dev/aac", "VoxCeleb2Vo", "fake")])
def test_voxceleb2_family(data_root, name, top, prefix, label):
    folder = data_root / top
    _make(folder, {"id00082/lXxPuqI6Yac/00146.wav": None})
    (folder / "id00082/lXxPuqI6Yac/00146.m4a").write_bytes(b"aac")  # converted: ignored
    (folder / "id00082/lXxPuqI6Yac/00147.m4a").write_bytes(b"aac")  # not converted: reported
    df, skips = prepare(name, data_root)
    tag = "hifigan-" if label == "fake" else ""
    assert list(df["ID"]) == [f"{prefix}-{tag}id00082-lXxPuqI6Yac-00146"]
    assert df["Label"].iloc[0] == label and df["Speaker"].iloc[0] == "id00082"
    assert df["Attack"].iloc[0] == ("hifigan" if label == "fake" else "-")
    assert "convert it to .wav" in skips[str(folder / "id00082/lXxPuqI6Yac/00147.m4a")]


@pytest.mark.parametrize("name, sub, prefix, label", [("FLEURS", "fleurs", "FLEURS", "real"),
                                                      ("FLEURS-R", "fleurs-r", "FLEURSR", "fake")])
def test_fleurs_family(data_root, name, sub, prefix, label):
    _make(data_root / "FLEURS" / sub / "data", {"ceb_ph/audio/train/10587240206760547719.wav": None,
                                                 "cmn_hans_cn/audio/dev/1.wav": None,
                                                 "yue_hant_hk/audio/test/2.wav": None, "es_419/audio/test/3.wav": None})
    df, _ = prepare(name, data_root)
    assert list(df["ID"]) == [f"{prefix}-CEB-10587240206760547719", f"{prefix}-CN-1", f"{prefix}-ES-3", f"{prefix}-YUE_HANT-2"]
    assert list(df["Proportion"]) == ["train", "valid", "test", "test"] and set(df["Label"]) == {label}


def test_codecfake_wu(data_root):
    _make(data_root / "CodecFake" / "processed", {"encodec_24khz+p272_103.wav": (0.1, 24000)})
    df, _ = prepare("CodecFake-Wu", data_root)
    assert df.loc["CodecFakeWu-encodec_24khz+p272_103", ["Label", "Attack", "Speaker", "SampleRate"]].tolist() == \
        ["fake", "encodec_24khz", "p272", 24000]


def test_aishell3(data_root):
    _make(data_root / "AIShell3", {"train/wav/SSB1567/SSB15670385.wav": (0.1, 44100),
                                   "test/wav/SSB0005/SSB00050001.wav": (0.1, 44100), "README.wav": None})
    df, skips = prepare("AIShell3", data_root)
    assert list(df["ID"]) == ["AIShell3-SSB0005-SSB00050001", "AIShell3-SSB1567-SSB15670385"]
    assert list(df["Proportion"]) == ["test", "train"] and set(df["Language"]) == {"ZH"}
    assert list(skips) == [str(data_root / "AIShell3/README.wav")]


def test_cnceleb2(data_root):
    _make(data_root / "CNCeleb2/CN-Celeb2_flac/data", {"id10936/recitation-02-028.flac": None})
    df, _ = prepare("CNCeleb2", data_root)
    assert df.loc["CNCeleb2-id10936-recitation-02-028", ["Label", "Speaker", "AudioEncoding"]].tolist() == \
        ["real", "id10936", "FLAC"]


def test_mls(data_root):
    _make(data_root / "MLS", {"mls_italian/train/audio/1595/5616/1595_5616_000327.flac": None,
                              "mls_polish/dev/audio/1/2/1_2_3.flac": None, "mls_klingon/test/audio/1/2/x.flac": None})
    df, skips = prepare("MLS", data_root)
    assert list(df["ID"]) == ["MLS-IT-1595_5616_000327", "MLS-PL-1_2_3"]  # fixed: Polish mapped
    assert list(df["Proportion"]) == ["train", "valid"] and list(df["Speaker"]) == ["1595", "1"]
    assert list(skips) == [str(data_root / "MLS/mls_klingon/test/audio/1/2/x.flac")]


def test_wavefake(data_root):
    top = data_root / "WaveFake" / "generated_audio"
    _make(top, {"ljspeech_melgan/LJ001-0001_gen.wav": None, "jsut_parallel_wavegan/BASIC5000_0001_gen.wav": None,
                "other_vocoder/x_gen.wav": None, "ljspeech_melgan/deep/y.wav": None})
    df, skips = prepare("WaveFake", data_root)
    assert list(df["ID"]) == ["WF-jsut_parallel_wavegan_BASIC5000_0001_gen", "WF-ljspeech_melgan_LJ001-0001_gen",
                              "WF-other_vocoder_x_gen"]
    assert list(df["Language"]) == ["JA", "EN", "-"]  # fixed: no carry-over from the previous file
    assert list(skips) == [str(top / "ljspeech_melgan/deep/y.wav")]
