"""RawBoost: every algorithm, determinism, and the measurable property of each distortion."""
import numpy as np
import pytest
import torch
from scipy import signal

from adf.data.rawboost import (
    ALGORITHMS,
    RawBoost,
    RawBoostOptions,
    isd_additive_noise,
    lnl_convolutive_noise,
    notch_cascade,
    rawboost,
)

SR = 16000


def _speechlike(seed=0, seconds=1.0, peak=0.3):
    """A few harmonics with an envelope plus a little noise, peak `peak` (below 1, so
    the 'normalise only above 1' rule leaves LnL/ISD outputs unscaled)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) / k for k, f in enumerate((150, 310, 720, 1800), 1))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(len(t))
    return peak * x / np.abs(x).max()


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_algorithm_keeps_length_type_and_finiteness(algo):
    x = _speechlike().astype(np.float32)
    y = rawboost(x, algo, rng=3)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == x.shape
    assert np.isfinite(y).all()
    assert (algo == 0) == np.array_equal(x, y)  # 0 is the identity, everything else changes x
    t = torch.from_numpy(x.astype(np.float64))
    yt = rawboost(t, algo, rng=3)
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float64 and yt.shape == t.shape
    np.testing.assert_allclose(yt.numpy(), y, atol=1e-6)  # same seed, same result for either type
    assert torch.isfinite(yt).all()


def test_silence_and_low_sample_rate_stay_finite():
    for algo in ALGORITHMS:
        assert np.array_equal(rawboost(np.zeros(4000), algo, rng=0), np.zeros(4000))
        y = rawboost(_speechlike(seconds=0.5)[::2], algo, rng=0, sr=8000)  # maxF above Nyquist
        assert len(y) == 4000 and np.isfinite(y).all()


def test_seeded_determinism():
    x = _speechlike()
    for algo in range(1, 9):
        a = rawboost(x, algo, rng=123)
        assert np.array_equal(a, rawboost(x, algo, rng=np.random.default_rng(123)))
        assert not np.array_equal(a, rawboost(x, algo, rng=124))
    first, second = RawBoost(5, seed=7), RawBoost(5, seed=7)
    outs = [first(x) for _ in range(3)]
    assert all(np.array_equal(o, second(x)) for o in outs)
    assert not np.array_equal(outs[0], outs[1])  # the Generator advances between calls


def _snr_db(clean, noisy):
    return 10 * np.log10(np.sum(clean ** 2) / np.sum((noisy - clean) ** 2))


def test_ssi_snr_within_range():
    x = _speechlike()
    snrs = [_snr_db(x, rawboost(x, 3, rng=s)) for s in range(30)]
    assert min(snrs) >= 10 - 1e-9 and max(snrs) <= 40 + 1e-9
    assert max(snrs) - min(snrs) > 10  # drawn from the range, not fixed
    fixed = RawBoostOptions(SNRmin=25, SNRmax=25)
    assert _snr_db(x, rawboost(x, 3, rng=5, options=fixed)) == pytest.approx(25, abs=1e-9)
    # the noise is coloured by the notch cascade: far from flat
    noise = rawboost(x, 3, rng=5, options=fixed) - x
    _, psd = signal.welch(noise, fs=SR, nperseg=512)
    assert psd.max() / psd[1:-1].min() > 10


def test_isd_changes_at_most_p_percent_of_samples():
    x = _speechlike()
    fractions = []
    for s in range(40):
        y = rawboost(x, 2, rng=s)
        changed = y != x
        fractions.append(changed.mean())
        assert changed.mean() <= 0.10 + 1e-9
        # impulse size is signal-dependent: |y - x| <= g_sd * |x|
        assert np.all(np.abs(y - x) <= 2 * np.abs(x) + 1e-12)
    assert 0.035 < np.mean(fractions) < 0.065  # beta ~ U[0, P]: mean P/2
    p3 = [(rawboost(x, 2, rng=s, options=RawBoostOptions(P=3)) != x).mean() for s in range(10)]
    assert max(p3) <= 0.03 + 1e-9
    assert np.array_equal(rawboost(x, 2, rng=0, options=RawBoostOptions(P=0)), x)


def test_lnl_linear_case_is_the_notch_filter():
    """With N_f = 1 algorithm 1 is x filtered by one notch cascade, mean removed."""
    opt = RawBoostOptions(N_f=1)
    x = _speechlike(seed=1)
    y = rawboost(x, 1, rng=11, options=opt)
    b = notch_cascade(np.random.default_rng(11), opt, SR, (0, 0))  # the same draw
    assert len(b) % 2 == 1
    delay = (len(b) - 1) // 2
    expected = np.convolve(x, b)[delay : delay + len(x)]  # direct convolution, delay removed
    np.testing.assert_allclose(y, expected - expected.mean(), atol=1e-9)
    # superposition: a linear system for the same random filter
    x2 = _speechlike(seed=2)
    both = rawboost(0.5 * x + 0.25 * x2, 1, rng=11, options=opt)
    np.testing.assert_allclose(both, 0.5 * y + 0.25 * rawboost(x2, 1, rng=11, options=opt), atol=1e-9)


def test_lnl_output_spectrum_follows_the_filter_response():
    opt = RawBoostOptions(N_f=1, minG=-6, maxG=-6)
    b = notch_cascade(np.random.default_rng(4), opt, SR, (-6, -6))
    freqs, h = signal.freqz(b, 1, fs=SR, worN=4096)
    assert np.abs(h).max() == pytest.approx(10 ** (-6 / 20), rel=1e-3)  # peak response = G dB
    assert np.abs(h).min() < 0.1 * np.abs(h).max()  # there is a notch
    white = np.random.default_rng(0).uniform(-0.5, 0.5, 8 * SR)
    y = rawboost(white, 1, rng=4, options=opt)
    f, pin = signal.welch(white, fs=SR, nperseg=1024)
    _, pout = signal.welch(y, fs=SR, nperseg=1024)
    measured = 10 * np.log10(pout[1:-1] / pin[1:-1])
    predicted = 20 * np.log10(np.abs(np.interp(f[1:-1], freqs, np.abs(h))) + 1e-12)
    keep = predicted > -30  # where the measurement is above the estimator's floor
    assert np.corrcoef(measured[keep], predicted[keep])[0, 1] > 0.95
    assert np.max(measured) < -6 + 1.5  # never louder than the filter's peak


def test_lnl_default_is_nonlinear():
    x = _speechlike()
    one, two = rawboost(x, 1, rng=2), rawboost(2 * x, 1, rng=2)
    assert not np.allclose(two, 2 * one, atol=1e-6)


def test_parallel_is_normalised_sum_of_lnl_and_isd_on_the_same_input():
    opt = RawBoostOptions()
    for scale in (1, 20):  # the sum's peak below 1 (kept) and above 1 (divided by it)
        x = scale * _speechlike()
        rng = np.random.default_rng(9)
        total = lnl_convolutive_noise(x, rng, opt, SR) + isd_additive_noise(x, rng, opt)
        y = rawboost(x, 8, rng=9)
        peak = np.abs(total).max()
        assert (peak > 1) == (scale == 20)
        np.testing.assert_allclose(y, total / max(peak, 1.0), atol=1e-12)
        assert not np.allclose(y, rawboost(x, 5, rng=9))  # not the series chain


@pytest.mark.parametrize("algo", [9, -1, "5", 2.5, True, None])
def test_bad_algorithm_is_a_clear_error(algo):
    with pytest.raises(ValueError, match="unknown RawBoost algorithm.*choose one of 0 \\(none\\)"):
        rawboost(_speechlike(), algo)
    with pytest.raises(ValueError, match="unknown RawBoost algorithm"):
        RawBoost(algo)


def test_bad_inputs_and_options():
    with pytest.raises(ValueError, match="1-D"):
        rawboost(np.zeros((2, 100)), 1)
    with pytest.raises(ValueError, match="1-D"):
        rawboost(np.zeros(0), 1)
    with pytest.raises(ValueError, match="minF .* > maxF"):
        RawBoostOptions(minF=9000, maxF=100)
    with pytest.raises(ValueError, match="P is a percentage"):
        RawBoostOptions(P=150)


def test_paper_defaults():
    o = RawBoostOptions()
    assert (o.nBands, o.minF, o.maxF, o.minBW, o.maxBW, o.minCoeff, o.maxCoeff) == (5, 20, 8000, 100, 1000, 10, 100)
    assert (o.minG, o.maxG, o.minBiasLinNonLin, o.maxBiasLinNonLin) == (0, 0, 5, 20)
    assert (o.N_f, o.P, o.g_sd, o.SNRmin, o.SNRmax) == (5, 10, 2, 10, 40)
