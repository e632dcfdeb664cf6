"""Test-set segmentation (datasets.md §3) on tiny generated audio."""
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from adf.data.segment import (
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
