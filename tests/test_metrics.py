"""adf.metrics against hand-computed cases and independent implementations."""
import numpy as np
import pytest

from adf import metrics


def brute_force_eer(scores, labels):
    """Independent EER: try every threshold (each distinct score, plus -inf),
    call real when score > threshold, keep the first with the smallest |FRR - FAR|."""
    scores = np.asarray(scores, float)
    labels = np.asarray(labels)
    real, fake = scores[labels == 1], scores[labels == 0]
    best = None
    for t in [-np.inf] + sorted(set(scores.tolist())):
        frr = sum(1 for r in real if r <= t) / len(real)
        far = sum(1 for f in fake if f > t) / len(fake)
        if best is None or abs(frr - far) < best[0]:
            best = (abs(frr - far), (frr + far) / 2, t)
    return best[1], best[2]


def test_eer_perfect_separation():
    scores = [0.6, 0.7, 0.8, 0.5, 0.4, 0.3, 0.2, 0.1]
    labels = [1, 1, 1, 1, 0, 0, 0, 0]
    assert metrics.compute_eer(scores, labels) == (0.0, 0.4)


def test_eer_fully_inverted():
    # every fake scores above every real: EER 100 %
    eer, _ = metrics.compute_eer([0.0, 0.1, 0.9, 1.0], [1, 1, 0, 0])
    assert eer == 1.0


def test_eer_ties_handled_exactly():
    # real {1, 2}, fake {0, 1}: the tie at 1 cannot be split by any threshold.
    # Operating points (FRR, FAR): -inf (0, 1); 0 (0, .5); 1 (.5, 0); 2 (1, 0).
    # |FRR - FAR| is .5 at both t=0 and t=1; the first gives EER (0 + .5) / 2.
    # A sort that split the tie would give 0 or .5 depending on the order.
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 2, 0, 3]):
        s = np.array([1.0, 2.0, 0.0, 1.0])[order]
        y = np.array([1, 1, 0, 0])[order]
        assert metrics.compute_eer(s, y) == (0.25, 0.0)


def test_eer_all_tied_is_chance():
    assert metrics.compute_eer([3.0] * 6, [1, 0, 1, 0, 1, 0])[0] == 0.5


@pytest.mark.parametrize("seed", range(8))
def test_eer_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = rng.normal(size=n) + labels * rng.uniform(0, 3)
    if seed % 2:  # coarse scores: many ties
        scores = np.round(scores, 1)
    eer, thr = metrics.compute_eer(scores, labels)
    ref_eer, ref_thr = brute_force_eer(scores, labels)
    assert eer == pytest.approx(ref_eer, abs=1e-12)
    assert thr == ref_thr


def test_eer_accepts_tensors_and_lists():
    torch = pytest.importorskip("torch")
    s = torch.tensor([0.2, 0.9, 0.4, 0.1])
    y = torch.tensor([0, 1, 1, 0])
    assert metrics.compute_eer(s, y) == metrics.compute_eer(s.tolist(), y.tolist())


def test_eer_matches_speechbrain():
    torch = pytest.importorskip("torch")
    from speechbrain.utils.metric_stats import EER as sb_eer

    rng = np.random.default_rng(3)
    real = rng.normal(1.0, 1.0, 400)
    fake = rng.normal(-1.0, 1.5, 300)
    scores = np.concatenate([real, fake])
    labels = np.r_[np.ones(400), np.zeros(300)]
    eer, _ = metrics.compute_eer(scores, labels)
    ref, _ = sb_eer(torch.tensor(real, dtype=torch.float64), torch.tensor(fake, dtype=torch.float64))
    assert eer == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize(
    "scores,labels,match",
    [
        ([0.1, float("nan")], [0, 1], "non-finite"),
        ([0.1, float("inf")], [0, 1], "non-finite"),
        ([0.1, 0.2], [1, 1], "no fake"),
        ([0.1, 0.2], [0, 0], "no real"),
        ([0.1, 0.2], [0, 2], "0 \\(fake\\) or 1"),
        ([0.1, 0.2, 0.3], [0, 1], "3 scores but 2 labels"),
    ],
)
def test_bad_input_raises(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        metrics.compute_eer(scores, labels)
