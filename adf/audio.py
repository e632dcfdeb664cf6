"""Reading audio and the reference's waveform preprocessing.

The order of operations follows the reference loader (docs/data.md, How a row is loaded):
mono mix -> (train/valid only) random crop at the native rate -> resample to
16 kHz -> (optional) RawBoost -> per-utterance waveform layer norm.
Audio is read with soundfile: torchaudio.load needs torchcodec, which is not
part of the pinned environment.
"""
from __future__ import annotations

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from adf.audio_file import AudioError, check_file  # noqa: F401 - AudioError re-exported: the error of reading audio
from adf.limits import AudioLimits  # noqa: F401 - re-exported: limits belong with reading audio

TARGET_SR = 16000


def read_audio(path, start=0, stop=None):
    """Read `path` (any libsndfile format) as float32 [channels, samples] plus its rate.

    `start`/`stop` select a sample range at the native rate, so long files and
    segment rows can be read without decoding the whole file; a range the file
    does not hold in full (a truncated file) is an AudioError.
    """
    check_file(path)
    try:
        data, sr = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(path, f"cannot decode audio ({err})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "contains no audio samples")
    if stop is not None and data.shape[0] < stop - start:
        raise AudioError(path, f"truncated: samples [{start}, {stop}) were asked for, only "
                               f"{data.shape[0]} decode")
    if not np.isfinite(data).all():
        raise AudioError(path, "contains NaN or infinite samples")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(sr)


def to_mono(wav):
    """[channels, samples] -> [samples] by averaging the channels (the reference's mix)."""
    return wav.mean(dim=0) if wav.dim() == 2 else wav


def resample(wav, sr, target_sr=TARGET_SR):
    """Band-limited sinc resampling (torchaudio's default kernel), no-op at the target rate."""
    if sr == target_sr:
        return wav
    import torchaudio.functional as AF

    return AF.resample(wav, sr, target_sr)


def waveform_layer_norm(wav):
    """Standardise one utterance over all its samples (zero mean, unit variance, eps 1e-5)."""
    return F.layer_norm(wav, wav.shape)


def random_crop(wav, sr, generator=None, max_s=13.0, min_s=10.0):
    """Training/validation crop: clips longer than `max_s` get a random window of
    a uniformly drawn length in [min_s, max_s] seconds (in samples at rate `sr`)."""
    n = wav.shape[-1]
    max_len = int(max_s * sr)
    if n <= max_len:
        return wav
    min_len = int(min_s * sr)
    length = int(torch.randint(min_len, max_len + 1, (1,), generator=generator))
    begin = int(torch.randint(0, n - length + 1, (1,), generator=generator))
    return wav[..., begin : begin + length]


# Above this peak, float audio (which may hold any finite value) could overflow
# float32 in the channel mix, the resampling filter or the variance of the layer
# norm; such audio is first scaled to a peak of 1, which the layer norm undoes
# (it is scale-invariant up to its eps). Real audio never gets near it, so its
# preprocessing is unchanged.
SAFE_PEAK = 1e12


def bounded(wav):
    """`wav` scaled to a peak of 1 when its peak exceeds SAFE_PEAK (see there), else itself."""
    peak = wav.abs().max() if wav.numel() else wav.new_zeros(())
    return wav / peak if peak > SAFE_PEAK else wav


def to_16k(wav, sr):
    """Mono 16 kHz waveform [T] of float audio [channels, samples] at rate `sr`."""
    return resample(to_mono(bounded(wav)), sr)


def load_16k(path, start=0, stop=None):
    """Mono 16 kHz waveform [T] of `path` (or its native-rate sample range)."""
    wav, sr = read_audio(path, start=start, stop=stop)
    return to_16k(wav, sr)


def load_for_model(path, start=0, stop=None):
    """What the reference feeds a model at test time: mono, 16 kHz, layer-normed, whole
    (the "whole" input policy, adf.input_policy)."""
    return waveform_layer_norm(load_16k(path, start, stop))
