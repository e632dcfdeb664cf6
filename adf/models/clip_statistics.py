"""Clip statistics: one fixed-length vector per utterance, the front-end of the statistics detector.

Two families, computed on a 16 kHz waveform [T] in fp32 whatever the caller's autocast:

* spectral envelope (`envelope_statistics`): the mean and standard deviation over frames of
  30 LFCCs and 30 MFCCs, the standard deviation of their frame-to-frame differences, and the
  mean, standard deviation and mean absolute frame-to-frame change of every 4th bin of the
  512-point log magnitude spectrum (torchaudio). What a channel, a codec or a speaker changes.
* voice source (`voice_source_statistics`): what the envelope leaves out, measured in the
  0-4 kHz telephone band every clip of a telephone corpus shares, on voiced frames: how peaked
  the linear-prediction residual is (glottal pulses are sharp; a vocoder that rebuilds the
  phase, like Griffin-Lim, smears them) and how strongly the envelopes of three frequency bands
  pulse at the pitch period (one glottal pulse excites every band at once in natural speech;
  re-synthesised phase loses that alignment, and pulse-train vocoders such as WORLD exaggerate
  it). Per clip: the median and the 25th and 75th percentiles of each measure over voiced
  frames (zeros when no frame is voiced).

On the example corpus the voice-source measures separate real speech from the vocoders that
the envelope statistics miss (README, "Choosing the example run's default").
"""
from __future__ import annotations

import functools

import numpy as np
import torch

SAMPLE_RATE = 16000
EXCITATION_RATE = 8000  # the telephone band (0-4 kHz)
FRAME, HOP = 320, 80  # at 8 kHz: 40 ms frames (two pitch periods at 60 Hz) every 10 ms
PITCH_LAGS = (EXCITATION_RATE // 400, EXCITATION_RATE // 60)  # 60-400 Hz
LPC_ORDER = 10
VOICED = 0.5  # normalised autocorrelation at the pitch lag above which a frame is voiced
SPEECH_DB = 25.0  # frames within this of the loudest frame are speech
ENVELOPE_BANDS = ((300, 1000), (1000, 2000), (2000, 3300))
VOICE_SOURCE_NAMES = ("periodicity", "residual_kurtosis", "residual_crest", "residual_pulsing",
                      *(f"pulsing_{lo}_{hi}" for lo, hi in ENVELOPE_BANDS))
N_FFT = 512
# the shortest clip both families accept: one 8 kHz analysis frame and a hop (the STFT's
# reflection padding needs more than N_FFT / 2 samples, far fewer)
MIN_SAMPLES = (FRAME + HOP) * (SAMPLE_RATE // EXCITATION_RATE)


@functools.cache
def _cepstra():
    """The LFCC and MFCC transforms, built once (their filterbanks)."""
    import torchaudio

    return (torchaudio.transforms.LFCC(sample_rate=SAMPLE_RATE, n_filter=70, n_lfcc=30,
                                       speckwargs=dict(n_fft=N_FFT, hop_length=160, win_length=320)),
            torchaudio.transforms.MFCC(sample_rate=SAMPLE_RATE, n_mfcc=30,
                                       melkwargs=dict(n_fft=N_FFT, hop_length=160, n_mels=64)))


def envelope_statistics(wav):
    """The spectral-envelope vector (module docstring) of a 16 kHz waveform [T], as numpy float32."""
    wav = torch.as_tensor(wav, dtype=torch.float32)
    parts = []
    with torch.autocast(wav.device.type, enabled=False), torch.no_grad():
        for transform in _cepstra():
            c = transform(wav)  # [coefficients, frames]
            parts += [c.mean(1), c.std(1), c.diff(dim=1).std(1)]
        spec = torch.stft(wav, N_FFT, 160, window=torch.hann_window(N_FFT), return_complex=True).abs()
        log_spec = (spec + 1e-8).log()[::4]
        parts += [log_spec.mean(1), log_spec.std(1), log_spec.diff(dim=1).abs().mean(1)]
    return torch.cat(parts).numpy()


def _normalised_autocorrelation(frame, lag):
    """Autocorrelation of a zero-mean `frame` at `lag`, over its value at 0."""
    full = np.correlate(frame, frame, "full")[len(frame) - 1:]
    return full[lag] / (full[0] + 1e-12)


def voice_source_frames(wav):
    """[voiced frames, len(VOICE_SOURCE_NAMES)] voice-source measures of a 16 kHz waveform [T]
    (module docstring), from the speech frames whose pitch-lag autocorrelation reaches VOICED."""
    from scipy.linalg import solve_toeplitz
    from scipy.signal import butter, hilbert, resample_poly, sosfiltfilt

    x = resample_poly(np.asarray(wav, dtype=np.float64), 1, SAMPLE_RATE // EXCITATION_RATE)
    starts = range(0, len(x) - FRAME, HOP)
    if len(starts) == 0:
        return np.zeros((0, len(VOICE_SOURCE_NAMES)))
    envelopes = [np.abs(hilbert(sosfiltfilt(butter(4, band, "bandpass", fs=EXCITATION_RATE, output="sos"), x)))
                 for band in ENVELOPE_BANDS]
    energy = np.array([np.sum(x[s:s + FRAME] ** 2) for s in starts])
    window = np.hanning(FRAME)
    rows = []
    for s, e in zip(starts, energy):
        if e <= energy.max() * 10 ** (-SPEECH_DB / 10):  # (also every frame of digital silence)
            continue
        frame = x[s:s + FRAME]
        acf = np.correlate(frame * window, frame * window, "full")[FRAME - 1:]
        lag = PITCH_LAGS[0] + int(np.argmax(acf[PITCH_LAGS[0]:PITCH_LAGS[1]]))
        periodicity = acf[lag] / acf[0]
        if periodicity < VOICED:
            continue
        predictor = solve_toeplitz(acf[:LPC_ORDER], acf[1:LPC_ORDER + 1])
        past = np.stack([frame[LPC_ORDER - 1 - i:FRAME - 1 - i] for i in range(LPC_ORDER)])
        residual = frame[LPC_ORDER:] - predictor @ past
        residual = residual / (residual.std() + 1e-12)
        magnitude = np.abs(residual)
        row = [periodicity, np.mean(residual ** 4), magnitude.max(),
               _normalised_autocorrelation(magnitude - magnitude.mean(), lag)]
        for envelope in envelopes:
            part = envelope[s:s + FRAME]
            row.append(_normalised_autocorrelation(part - part.mean(), lag))
        rows.append(row)
    return np.array(rows).reshape(-1, len(VOICE_SOURCE_NAMES))


def voice_source_statistics(wav):
    """The median, then the 25th and 75th percentiles, over voiced frames of each voice-source
    measure (zeros when no frame is voiced), as numpy float32."""
    frames = voice_source_frames(wav)
    if not len(frames):
        return np.zeros(3 * len(VOICE_SOURCE_NAMES), dtype=np.float32)
    return np.concatenate([np.median(frames, 0), *np.percentile(frames, [25, 75], axis=0)]).astype(np.float32)


STATISTICS = {"cepstra": envelope_statistics, "excitation": voice_source_statistics}
# their lengths: 30 LFCCs and 30 MFCCs x 3 statistics, every 4th of N_FFT / 2 + 1 bins x 3; 3
# statistics of each voice-source measure (known without computing, e.g. on the meta device)
STATISTICS_SIZES = {"cepstra": 2 * 3 * 30 + 3 * len(range(0, N_FFT // 2 + 1, 4)),
                    "excitation": 3 * len(VOICE_SOURCE_NAMES)}


def statistics_size(families):
    """The length of clip_statistics(wav, families)."""
    unknown = sorted(set(families) - set(STATISTICS))
    if unknown or not families:
        raise ValueError(f"clip statistics families must be some of {', '.join(STATISTICS)} (got {list(families)})")
    return sum(STATISTICS_SIZES[f] for f in families)


def clip_statistics(wav, families=("cepstra", "excitation")):
    """The clip's vector: the chosen families (STATISTICS) joined, float32 [F]. A value that is
    not finite (a clip of digital silence has no spectrum to take the log of) becomes 0, or
    the float32 limit of its sign, so every clip gets a vector the trees can compare."""
    statistics_size(families)
    wav = torch.as_tensor(wav).detach().float().cpu()
    if wav.dim() != 1:
        raise ValueError(f"clip statistics take one waveform [T], not a tensor of shape {tuple(wav.shape)}")
    if wav.shape[0] < MIN_SAMPLES:
        raise ValueError(f"a clip of {wav.shape[0]} samples is too short for clip statistics "
                         f"(at least {MIN_SAMPLES}, {MIN_SAMPLES / SAMPLE_RATE:.2f} s at 16 kHz)")
    vector = np.concatenate([STATISTICS[f](wav.numpy()) for f in families]).astype(np.float32)
    limit = np.finfo(np.float32).max
    return np.nan_to_num(vector, nan=0.0, posinf=limit, neginf=-limit)
