import numpy as np
import pytest
import soundfile as sf
import torch

from adf.audio import AudioError, load_for_model, random_crop, read_audio, resample, to_mono, waveform_layer_norm
from tests.synth import write_tone


def test_missing_empty_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="does not exist") as e:
        read_audio(tmp_path / "nope.wav")
    assert "nope.wav" in str(e.value)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        read_audio(empty)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(AudioError, match="cannot decode") as e:
        read_audio(corrupt)
    assert "corrupt.wav" in str(e.value)
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="no audio samples"):
        read_audio(zero)


def test_stereo_is_mixed_to_mono_by_averaging(tmp_path):
    p = write_tone(tmp_path / "st.wav", 0.5, 16000, channels=2)
    wav, sr = read_audio(p)
    assert wav.shape[0] == 2 and sr == 16000
    mono = to_mono(wav)
    assert torch.allclose(mono, (wav[0] + wav[1]) / 2)


@pytest.mark.parametrize("sr", [8000, 16000, 44100])
def test_load_for_model_gives_16k_unit_variance(tmp_path, sr):
    p = write_tone(tmp_path / f"a{sr}.flac", 1.0, sr, subtype="PCM_16")
    x = load_for_model(p)
    assert x.dim() == 1 and abs(x.shape[0] - 16000) <= 1
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std(unbiased=False)) - 1) < 1e-3


def test_resample_preserves_a_tone_frequency():
    sr = 8000
    t = torch.arange(sr) / sr
    x = torch.sin(2 * torch.pi * 440 * t)
    y = resample(x, sr, 16000)
    spec = torch.fft.rfft(y).abs()
    assert int(spec.argmax()) == 440  # 1 s of audio: bin index = Hz


def test_layer_norm_matches_hand_computation():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    expected = (x - 2.5) / torch.sqrt(torch.tensor(1.25) + 1e-5)
    assert torch.allclose(waveform_layer_norm(x), expected)


def test_random_crop_only_long_clips_within_10_to_13_s():
    sr = 100
    short = torch.arange(13 * sr)
    assert random_crop(short, sr) is short
    long = torch.arange(60 * sr)
    g = torch.Generator().manual_seed(0)
    lengths = set()
    for _ in range(50):
        c = random_crop(long, sr, generator=g)
        assert 10 * sr <= len(c) <= 13 * sr
        assert torch.equal(c, long[int(c[0]) : int(c[0]) + len(c)])  # contiguous window
        lengths.add(len(c))
    assert len(lengths) > 5
