"""RawBoost data augmentation (Tak, Kamble, Patino, Todisco, Evans, ICASSP 2022).

Three distortions of the raw waveform and their combinations, numbered as in
the paper's reference code (the AntiDeepfake recipes default to 5):

  0  none (identity)
  1  LnL: linear and non-linear convolutive noise. The sum over j = 1..N_f of
     x**j, each power filtered by its own random FIR notch (band-stop) cascade
  2  ISD: impulsive signal-dependent noise on a random beta% of the samples
     (beta ~ U[0, P]): x[i] += g_sd * x[i] * (2u-1)(2v-1)
  3  SSI: stationary signal-independent additive noise: white noise shaped by
     a random notch cascade and added at an SNR ~ U[SNRmin, SNRmax] dB
  4  1 -> 2 -> 3 in series      5  1 -> 2 in series
  6  1 -> 3 in series           7  2 -> 3 in series
  8  1 and 2 in parallel on the same input, summed and peak-normalised

Normalisation follows the reference: LnL and ISD outputs are divided by their
peak only when it exceeds 1; algorithm 8 does the same to the sum.

Notch cascade: `nBands` band-stop FIR filters (Hamming window, an odd number
of taps in [minCoeff, maxCoeff + 1], centre ~ U[minF, maxF] Hz, bandwidth
~ U[minBW, maxBW] Hz) convolved together and scaled so the peak of the
magnitude response is G dB, G ~ U[minG, maxG]. In LnL the powers j >= 2 use
G ~ U[minG - minBiasLinNonLin, maxG - maxBiasLinNonLin] (with the defaults
-20..-5 dB), so the non-linear terms sit below the linear one. Filtering is
zero-phase-aligned (the linear-phase delay is removed), so the output has
the input's length and timing.

Deviation from the reference: its configurations never define `SNRmax`,
which algorithms 3, 4, 6 and 7 need; here it defaults to 40 dB (the paper's
SSI range is 10-40 dB).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

ALGORITHMS = {
    0: "none", 1: "LnL convolutive", 2: "ISD impulsive", 3: "SSI additive",
    4: "1+2+3 series", 5: "1+2 series", 6: "1+3 series", 7: "2+3 series",
    8: "1||2 parallel",
}


@dataclass(frozen=True)
class RawBoostOptions:
    """RawBoost parameters; defaults are the paper's (frequencies in Hz, gains in dB)."""

    nBands: int = 5              # notch filters per cascade
    minF: float = 20.0           # centre frequency range
    maxF: float = 8000.0
    minBW: float = 100.0         # notch bandwidth range
    maxBW: float = 1000.0
    minCoeff: int = 10           # FIR length range (made odd)
    maxCoeff: int = 100
    minG: float = 0.0            # cascade gain range
    maxG: float = 0.0
    minBiasLinNonLin: float = 5.0   # extra attenuation of the non-linear LnL terms
    maxBiasLinNonLin: float = 20.0
    N_f: int = 5                 # order of the LnL polynomial
    P: float = 10.0              # ISD: at most P % of samples hit
    g_sd: float = 2.0            # ISD gain
    SNRmin: float = 10.0         # SSI SNR range in dB
    SNRmax: float = 40.0         # missing from the reference configs; the paper's upper bound

    def __post_init__(self):
        problems = []
        for lo, hi in (("minF", "maxF"), ("minBW", "maxBW"), ("minCoeff", "maxCoeff"),
                       ("minG", "maxG"), ("SNRmin", "SNRmax")):
            if getattr(self, lo) > getattr(self, hi):
                problems.append(f"{lo} ({getattr(self, lo)}) > {hi} ({getattr(self, hi)})")
        if self.nBands < 1 or self.N_f < 1:
            problems.append(f"nBands and N_f must be >= 1 (got {self.nBands}, {self.N_f})")
        if self.minCoeff < 1:
            problems.append(f"minCoeff must be >= 1 (got {self.minCoeff})")
        if self.minF < 0 or self.minBW <= 0:
            problems.append(f"minF must be >= 0 and minBW > 0 (got {self.minF}, {self.minBW})")
        if not 0 <= self.P <= 100:
            problems.append(f"P is a percentage in [0, 100] (got {self.P})")
        if problems:
            raise ValueError("bad RawBoost options: " + "; ".join(problems))


def _peak_normalise(x, always=False):
    """Divide by the peak magnitude (always, or only when it exceeds 1)."""
    peak = np.max(np.abs(x))
    if peak > 0 and (always or peak > 1):
        return x / peak
    return x


def notch_cascade(rng, opt, sr, gain_range):
    """Random FIR notch cascade: coefficients of `nBands` band-stop filters
    convolved, scaled to a peak response of G dB, G ~ U[gain_range]."""
    nyquist = sr / 2
    b = np.ones(1)
    for _ in range(opt.nBands):
        fc = min(rng.uniform(opt.minF, opt.maxF), nyquist)
        bw = rng.uniform(opt.minBW, opt.maxBW)
        taps = int(rng.integers(opt.minCoeff, opt.maxCoeff + 1))
        taps += 1 - taps % 2  # a band-stop FIR needs an odd length
        low = max(fc - bw / 2, 1e-3)
        high = min(fc + bw / 2, nyquist - 1e-3)
        b = np.convolve(b, signal.firwin(taps, [low, high], window="hamming", fs=sr))
    gain_db = rng.uniform(min(gain_range), max(gain_range))
    _, h = signal.freqz(b, 1, fs=sr)
    return 10 ** (gain_db / 20) * b / np.max(np.abs(h))


def fir_filter(x, b):
    """Filter with an odd-length linear-phase FIR, delay removed: same length as x."""
    return signal.oaconvolve(x, b, mode="same")


def lnl_convolutive_noise(x, rng, opt, sr):
    """Algorithm 1: sum of FIR-notch-filtered powers x**1..x**N_f, mean removed."""
    y = np.zeros_like(x)
    for j in range(1, opt.N_f + 1):
        if j == 1:
            gains = (opt.minG, opt.maxG)
        else:
            gains = (opt.minG - opt.minBiasLinNonLin, opt.maxG - opt.maxBiasLinNonLin)
        y += fir_filter(x ** j, notch_cascade(rng, opt, sr, gains))
    return _peak_normalise(y - y.mean())


def isd_additive_noise(x, rng, opt, sr=None):
    """Algorithm 2: impulsive noise proportional to the signal on beta% of the samples
    (`sr` is unused: the signature is shared with the other distortions)."""
    beta = rng.uniform(0, opt.P)
    hit = rng.permutation(len(x))[: int(len(x) * beta / 100)]
    f_r = (2 * rng.random(len(hit)) - 1) * (2 * rng.random(len(hit)) - 1)
    y = x.copy()
    y[hit] += opt.g_sd * x[hit] * f_r
    return _peak_normalise(y)


def ssi_additive_noise(x, rng, opt, sr):
    """Algorithm 3: coloured Gaussian noise added at a random SNR in [SNRmin, SNRmax] dB."""
    noise = fir_filter(rng.standard_normal(len(x)), notch_cascade(rng, opt, sr, (opt.minG, opt.maxG)))
    snr_db = rng.uniform(opt.SNRmin, opt.SNRmax)
    norm = np.linalg.norm(noise)
    if norm == 0:
        return x
    return x + noise / norm * np.linalg.norm(x) / 10 ** (snr_db / 20)


# Algorithm number -> distortions applied in series (8 is the parallel case).
_CHAINS = {0: (), 1: (1,), 2: (2,), 3: (3,), 4: (1, 2, 3), 5: (1, 2), 6: (1, 3), 7: (2, 3)}


def _process(x, algo, rng, opt, sr):
    steps = {1: lnl_convolutive_noise, 2: isd_additive_noise, 3: ssi_additive_noise}
    if algo == 8:
        return _peak_normalise(lnl_convolutive_noise(x, rng, opt, sr) + isd_additive_noise(x, rng, opt, sr))
    for k in _CHAINS[algo]:
        x = steps[k](x, rng, opt, sr)
    return x


def check_algorithm(algo):
    """Return `algo` as an int in 0..8, or raise a ValueError that lists the choices."""
    if isinstance(algo, bool) or not isinstance(algo, (int, np.integer)) or int(algo) not in ALGORITHMS:
        choices = ", ".join(f"{k} ({v})" for k, v in ALGORITHMS.items())
        raise ValueError(f"unknown RawBoost algorithm {algo!r}; choose one of {choices}")
    return int(algo)


def rawboost(wav, algo=5, rng=None, options=None, sr=16000):
    """Apply RawBoost algorithm `algo` to a 1-D waveform (numpy array or torch tensor).

    `rng` is a numpy Generator or a seed (None: fresh entropy). Returns the
    same type, length, torch device and float dtype as the input (integer
    input comes back as float64).
    """
    algo = check_algorithm(algo)
    opt = options if options is not None else RawBoostOptions()
    rng = np.random.default_rng(rng)
    is_torch = type(wav).__module__.startswith("torch")
    x = wav.detach().cpu().double().numpy() if is_torch else np.asarray(wav, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"RawBoost needs a non-empty 1-D waveform (got shape {tuple(x.shape)})")
    if sr <= 0:
        raise ValueError(f"sample rate must be positive (got {sr})")
    y = _process(x.copy(), algo, rng, opt, sr)
    if is_torch:
        import torch

        dtype = wav.dtype if wav.is_floating_point() else torch.float64
        return torch.from_numpy(y).to(dtype=dtype, device=wav.device)
    dtype = np.asarray(wav).dtype
    return y.astype(dtype if np.issubdtype(dtype, np.floating) else np.float64)

class RawBoost:
    """A configured augmentation for a data pipeline: `RawBoost(5, seed=1)(wav)`.

    Holds its own Generator, so a sequence of calls is reproducible from the
    seed. Give each data-loader worker its own seed (e.g. seed + worker id),
    or every worker replays the same noise.
    """

    def __init__(self, algo=5, options=None, sr=16000, seed=None):
        self.algo = check_algorithm(algo)
        self.options = options if options is not None else RawBoostOptions()
        self.sr = sr
        self.rng = np.random.default_rng(seed)

    def __call__(self, wav, rng=None):
        """Augment `wav`; `rng` (a seed or Generator) overrides the instance's generator.

        adf.data.pipeline passes a per-item, per-epoch seed, which makes the
        noise independent of data-loader workers and of where a resumed run restarted.
        """
        return rawboost(wav, self.algo, self.rng if rng is None else rng, self.options, self.sr)
