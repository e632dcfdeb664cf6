"""Test-set segmentation (datasets.md §3) on tiny generated audio."""
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from adf.data.manifest import COLUMNS, read_manifest, write_manifest
from adf.data.segment import (
    DURATIONS,
    deepvoice_segment_rows,
    fixed_segment_rows,
    fixed_segments,
    parse_deepvoice_log,
    write_deepvoice_segments,
    write_fixed_segments,
)


# ------------------------------------------------------------------ fixed_segments

def test_worked_example_25_3s_at_16k_with_4s():
    segs = fixed_segments(int(25.3 * 16000), 16000, 4)
    assert len(segs) == 7
    assert [b - a for a, b in segs[:6]] == [64000] * 6
    assert segs[-1] == (6 * 64000, 404800)
    assert segs[-1][1] - segs[-1][0] == 20800


@pytest.mark.parametrize("n,sr,d", [(1, 16000, 4), (63999, 16000, 4), (64000, 16000, 4), (64001, 16000, 4),
                                    (22050 * 61 + 7, 22050, 13), (44100 * 50, 44100, 50), (12345, 8000, 0.5)])
def test_segments_tile_the_file(n, sr, d):
    segs = fixed_segments(n, sr, d)
    length = math.floor(d * sr)
    assert len(segs) == math.ceil(n / length)
    assert segs[0][0] == 0 and segs[-1][1] == n
    for (a, b), (c, _) in zip(segs, segs[1:]):
        assert b == c and b - a == length  # no gap, no overlap, full length before the last
    assert 1 <= segs[-1][1] - segs[-1][0] <= length


def test_short_file_is_one_segment():
    assert fixed_segments(1000, 16000, 10) == [(0, 1000)]


@pytest.mark.parametrize("args", [(0, 16000, 4), (100, 0, 4), (100, 16000, 0), (100, 16000, 1e-6)])
def test_bad_arguments_raise(args):
    with pytest.raises(ValueError):
        fixed_segments(*args)


# ------------------------------------------------------------- fixed_segment_rows

def _files():
    return pd.DataFrame({
        "ID": ["DE24_a", "DE24_b"], "Label": ["fake", "real"],
        "Path": ["$ROOT/x/a.wav", "$ROOT/x/b.flac"], "SampleRate": [16000, 22050],
        "NumSamples": [int(25.3 * 16000), 22050 * 3], "Proportion": ["test", "train"],
        "Language": ["EN", "-"], "AudioChannel": [2, 1],
    })


def test_rows_for_every_duration(tmp_path):
    files = _files()
    for d in DURATIONS:
        rows = fixed_segment_rows(files, d)
        assert list(rows.columns) == COLUMNS + ["Start", "Stop"]
        for _, f in files.iterrows():
            mine = rows[rows["Path"] == f["Path"]]
            expected = fixed_segments(f["NumSamples"], f["SampleRate"], d)
            assert list(zip(mine["Start"], mine["Stop"])) == expected
            assert list(mine["ID"]) == [f"{f['ID']}_seg{k}" for k in range(1, len(expected) + 1)]
            assert (mine["Label"] == f["Label"]).all() and (mine["Proportion"] == f["Proportion"]).all()
            assert (mine["AudioChannel"] == f["AudioChannel"]).all()
            np.testing.assert_allclose(mine["Duration"], [round((b - a) / f["SampleRate"], 2) for a, b in expected])
        # the rows are a valid manifest that survives a write/read round trip
        write_manifest(rows, tmp_path / f"{d}.csv")
        back, problems = read_manifest(tmp_path / f"{d}.csv")
        assert problems == [] and list(back["Start"]) == list(rows["Start"])
    four = fixed_segment_rows(files, 4)
    assert four.iloc[6]["Duration"] == 1.3 and four.iloc[6]["ID"] == "DE24_a_seg7"
    assert four.iloc[0]["Attack"] == "-"  # default for a column the table lacks


def test_rows_name_the_bad_file():
    files = _files()
    files.loc[1, "NumSamples"] = 0
    with pytest.raises(ValueError, match="DE24_b"):
        fixed_segment_rows(files, 4)
    with pytest.raises(ValueError, match="NumSamples"):
        fixed_segment_rows(files.drop(columns="NumSamples"), 4)


# ----------------------------------------------------------- write_fixed_segments

def test_writer_reference_layout_mono_native_rate(tmp_path):
    rng = np.random.default_rng(0)
    stereo = rng.uniform(-0.5, 0.5, size=(int(9.5 * 8000), 2))
    sf.write(tmp_path / "abc_0016.wav", stereo, 8000, subtype="PCM_16")
    mono_flac = rng.uniform(-0.5, 0.5, size=3 * 11025)
    sf.write(tmp_path / "clip.v2.flac", mono_flac, 11025)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really audio")
    # readable (libsndfile sniffs the header) but M4A cannot be written back
    sf.write(tmp_path / "talk.m4a", mono_flac, 11025, format="WAV")
    files = pd.DataFrame({
        "Path": [str(tmp_path / n) for n in ("abc_0016.wav", "clip.v2.flac", "broken.wav", "talk.m4a")],
        "Label": ["fake", "real", "real", "real"], "Proportion": ["train", "test", "test", "test"],
    })
    out = tmp_path / "segmented"
    written, problems = write_fixed_segments(files, out, durations=(4, 10))
    assert len(problems) == 2 and "broken.wav" in problems[0] and "talk.m4a" in problems[1]
    expected_names = {
        out / "train/4s/fake/abc_0016_seg1.wav", out / "train/4s/fake/abc_0016_seg2.wav",
        out / "train/4s/fake/abc_0016_seg3.wav", out / "train/10s/fake/abc_0016_seg1.wav",
        out / "test/4s/real/clip.v2_seg1.flac", out / "test/10s/real/clip.v2_seg1.flac",
    }
    assert {p for p in map(type(out), written)} == expected_names
    assert sorted(p for p in out.rglob("*") if p.is_file()) == sorted(expected_names)  # no temp files
    # contents: mono mix at the native rate, the right slices
    ref, _ = sf.read(tmp_path / "abc_0016.wav", dtype="float32")
    mix = ref.mean(axis=1)
    for k, (a, b) in enumerate(fixed_segments(len(mix), 8000, 4), 1):
        seg, sr = sf.read(out / f"train/4s/fake/abc_0016_seg{k}.wav", dtype="float32")
        assert sr == 8000 and seg.ndim == 1 and len(seg) == b - a
        np.testing.assert_allclose(seg, mix[a:b], atol=1 / 32768)
    assert sf.info(out / "train/4s/fake/abc_0016_seg3.wav").frames == int(1.5 * 8000)
    assert sf.info(out / "test/4s/real/clip.v2_seg1.flac").samplerate == 11025


# ------------------------------------------------------------------ DEEP-VOICE

LOG = """Starting segmentation
Audio: Obama-to-Biden_seg_1, start at: -5, end at: 800
Saved: /x/DeepVoice/AUDIO_SEGMENTS/FAKE/Obama-to-Biden_seg_1.wav
Audio: Obama-to-Biden_seg_2, start at: 600, end at: 1500
Saved: /x/DeepVoice/AUDIO_SEGMENTS/FAKE/Obama-to-Biden_seg_2.wav
Audio: Obama-to-Biden_seg_3, start at: 1200, end at: 99999
Saved: /x/DeepVoice/AUDIO_SEGMENTS/FAKE/Obama-to-Biden_seg_3.wav
Audio: linus-original_seg_1, start at: 0, end at: 700
Saved: /x/DeepVoice/AUDIO_SEGMENTS/REAL/linus-original_seg_1.wav
Audio: linus-original_seg_2, start at: 300, end at: 1000
Saved: /x/DeepVoice/AUDIO_SEGMENTS/REAL/linus-original_seg_2.wav
Audio: taylor-original_seg_1, start at: 0, end at: 500
Saved: /x/DeepVoice/AUDIO_SEGMENTS/REAL/taylor-original_seg_1.wav
All segments saved.
"""


@pytest.fixture
def deepvoice(tmp_path):
    audio = tmp_path / "DeepVoice/KAGGLE/AUDIO"
    (audio / "FAKE").mkdir(parents=True)
    (audio / "REAL").mkdir(parents=True)
    rng = np.random.default_rng(1)
    fake = rng.integers(-2000, 2000, size=(2000, 2)).astype(np.int16)
    real = rng.integers(-2000, 2000, size=1000).astype(np.int16)
    sf.write(audio / "FAKE/Obama-to-Biden.wav", fake, 44100, subtype="PCM_16")
    sf.write(audio / "REAL/linus-original.wav", real, 22050, subtype="PCM_16")
    # taylor-original.wav is missing on purpose
    (tmp_path / "seg.log").write_text(LOG)
    return tmp_path, audio, fake, real


def test_parse_log(deepvoice):
    root, *_ = deepvoice
    table = parse_deepvoice_log(root / "seg.log")
    assert table.equals(parse_deepvoice_log(LOG))
    assert list(table["base"]) == ["Obama-to-Biden"] * 3 + ["linus-original"] * 2 + ["taylor-original"]
    assert list(table["n"]) == [1, 2, 3, 1, 2, 1]
    assert list(table["start"]) == [-5, 600, 1200, 0, 300, 0]
    assert list(table["end"]) == [800, 1500, 99999, 700, 1000, 500]
    assert list(table["folder"]) == ["FAKE"] * 3 + ["REAL"] * 3


def test_parse_log_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.log"):
        parse_deepvoice_log(str(tmp_path / "nope.log"))


def test_parse_log_rejects_malformed_line():
    with pytest.raises(ValueError, match="line 2"):
        parse_deepvoice_log("Audio: a_seg_1, start at: 0, end at: 10\nAudio: b_seg_x, start at: 0, end at: 5\n")


def test_deepvoice_rows_clamped(deepvoice):
    root, audio, *_ = deepvoice
    rows, problems = deepvoice_segment_rows(parse_deepvoice_log(LOG), audio, data_root=root)
    assert len(problems) == 1 and "taylor-original.wav" in problems[0]
    assert list(rows["ID"]) == [
        "DeepVoice-VC_Obama-to-Biden_seg_1", "DeepVoice-VC_Obama-to-Biden_seg_2",
        "DeepVoice-VC_Obama-to-Biden_seg_3", "DeepVoice-VC_linus-original_seg_1",
        "DeepVoice-VC_linus-original_seg_2"]
    assert list(rows["Start"]) == [0, 600, 1200, 0, 300]
    assert list(rows["Stop"]) == [800, 1500, 2000, 700, 1000]
    assert list(rows["Label"]) == ["fake"] * 3 + ["real"] * 2
    assert list(rows["SampleRate"]) == [44100] * 3 + [22050] * 2
    assert list(rows["AudioChannel"]) == [2] * 3 + [1] * 2
    assert rows.iloc[0]["Path"] == "$ROOT/DeepVoice/KAGGLE/AUDIO/FAKE/Obama-to-Biden.wav"
    assert (rows["Attack"] == "VC").all() and (rows["Language"] == "EN").all()
    assert (rows["AudioEncoding"] == "PCM_S").all() and (rows["AudioBitSample"] == 16).all()
    assert rows.iloc[2]["Duration"] == round(800 / 44100, 2)


def test_deepvoice_writer_keeps_channels(deepvoice):
    root, audio, fake, real = deepvoice
    out = root / "DeepVoice/AUDIO_SEGMENTS"
    written, problems = write_deepvoice_segments(parse_deepvoice_log(LOG), audio, out)
    assert len(written) == 5 and len(problems) == 1
    seg, sr = sf.read(out / "FAKE/Obama-to-Biden_seg_3.wav", dtype="int16", always_2d=True)
    assert sr == 44100 and seg.shape == (800, 2)
    np.testing.assert_array_equal(seg, fake[1200:2000])
    seg, sr = sf.read(out / "REAL/linus-original_seg_2.wav", dtype="int16")
    assert sr == 22050
    np.testing.assert_array_equal(seg, real[300:1000])
    seg, _ = sf.read(out / "FAKE/Obama-to-Biden_seg_1.wav", dtype="int16", always_2d=True)
    np.testing.assert_array_equal(seg, fake[0:800])
    assert not (out / "REAL/taylor-original_seg_1.wav").exists()
