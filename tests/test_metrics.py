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
    # what a validation loop holds: bf16 logits differences and float labels
    s16 = s.to(torch.bfloat16)
    assert metrics.compute_eer(s16, y.float()) == metrics.compute_eer(s16.float().tolist(), y.tolist())


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


# --- the other metrics -------------------------------------------------------

TIE_SCORES = np.array([1.0, 2.0, 0.0, 1.0])
TIE_LABELS = np.array([1, 1, 0, 0])


def random_trials(seed, n=500, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    s = rng.normal(size=n) + 1.5 * y
    return (np.round(s, 1) if ties else s), y


def test_min_dcf_hand_computed():
    # Points (FRR, FAR): (0,1) (0,.5) (.5,0) (1,0); ASVspoof 5 cost .95 FRR + .5 FAR:
    # .5, .25, .475, .95 -> min .25 at threshold 0, normalised by min(.95, .5) -> .5
    assert metrics.min_dcf(TIE_SCORES, TIE_LABELS) == (0.5, 0.0)
    # Equal priors and costs: .5 FRR + .5 FAR = .5 .25 .25 .5 -> .25 / .5
    assert metrics.min_dcf(TIE_SCORES, TIE_LABELS, p_spoof=0.5, c_miss=1, c_fa=1)[0] == 0.5
    assert metrics.min_dcf([0, 1, 2, 3], [0, 0, 1, 1]) == (0.0, 1.0)


def test_min_dcf_matches_speechbrain():
    torch = pytest.importorskip("torch")
    from speechbrain.utils.metric_stats import minDCF as sb_min_dcf

    s, y = random_trials(5, n=300)
    ref, _ = sb_min_dcf(
        torch.tensor(s[y == 1]), torch.tensor(s[y == 0]), c_miss=1.0, c_fa=10.0, p_target=0.95
    )  # SpeechBrain's cost is not normalised
    # SpeechBrain counts in float32
    assert metrics.min_dcf(s, y)[0] * metrics.dcf_default() == pytest.approx(ref, abs=1e-6)


def test_act_dcf_hand_computed():
    # Bayes threshold log(10 * .05 / (1 * .95)) = -0.642: real -1 is a miss (1/2),
    # fake 0 a false alarm (1/2): (.95 * .5 + .5 * .5) / .5 = 1.45
    assert metrics.bayes_threshold() == pytest.approx(np.log(0.5 / 0.95))
    assert metrics.act_dcf([2.0, -1.0, -2.0, 0.0], [1, 1, 0, 0]) == pytest.approx(1.45)
    assert metrics.act_dcf([5.0, 4.0, -5.0], [1, 1, 0]) == 0.0


def test_cllr_hand_computed():
    assert metrics.cllr([0.0, 0.0, 0.0], [1, 0, 1]) == pytest.approx(1.0)
    # LLR +-log 3 on the right sides: each trial costs log2(1 + 1/3)
    assert metrics.cllr([np.log(3), -np.log(3)], [1, 0]) == pytest.approx(np.log2(4 / 3))
    # Huge LLRs must not overflow
    assert metrics.cllr([1e6, -1e6], [1, 0]) == 0.0
    assert metrics.cllr([-1e6, -1e6], [1, 0]) == pytest.approx(1e6 / (2 * np.log(2)))


def test_min_cllr_hand_computed():
    assert metrics.min_cllr([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 0.0
    assert metrics.min_cllr([0.5] * 4, [0, 1, 0, 1]) == pytest.approx(1.0)


@pytest.mark.parametrize("ties", [False, True])
def test_min_cllr_matches_isotonic_regression(ties):
    from sklearn.isotonic import IsotonicRegression

    s, y = random_trials(11, ties=ties)
    post = IsotonicRegression(y_min=0, y_max=1).fit_transform(s, y.astype(float))
    prior = np.log(y.mean() / (1 - y.mean()))
    eps = 1e-300  # PAV posteriors of exactly 0/1 only occur on one-class blocks
    llr = np.log(post + eps) - np.log(1 - post + eps) - prior
    ref = (np.mean(np.log2(1 + np.exp(-llr[y == 1]))) + np.mean(np.log2(1 + np.exp(llr[y == 0])))) / 2
    assert metrics.min_cllr(s, y) == pytest.approx(ref, rel=1e-9)
    assert metrics.min_cllr(s, y) <= metrics.cllr(s, y)


def test_auc_hand_computed_and_sklearn():
    from sklearn.metrics import roc_auc_score

    # pairs (real, fake): (1,0) win, (1,1) tie = 1/2, (2,0) win, (2,1) win -> 3.5 / 4
    assert metrics.roc_auc(TIE_SCORES, TIE_LABELS) == 0.875
    for ties in (False, True):
        s, y = random_trials(2, ties=ties)
        assert metrics.roc_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_det_curve_matches_sklearn_roc_curve():
    from sklearn.metrics import roc_curve

    s, y = random_trials(4, ties=True)
    curve = metrics.det_curve(s, y)
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    ours = sorted(zip(curve.far.tolist(), (1 - curve.frr).tolist()))
    theirs = sorted(zip(fpr.tolist(), tpr.tolist()))
    np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_decision_metrics_match_sklearn():
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

    s, y = random_trials(6)
    prob = metrics.sigmoid(s - 0.7)
    pred = (prob >= 0.5).astype(int)
    got = metrics.decision_metrics(prob, y)
    tn, fp, fn, tp = confusion_matrix(y, pred).ravel()
    assert got["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(precision_score(y, pred))
    assert got["recall"] == pytest.approx(recall_score(y, pred))
    assert got["f1"] == pytest.approx(f1_score(y, pred))
    assert got["fpr"] == pytest.approx(fp / (fp + tn))
    assert got["fnr"] == pytest.approx(fn / (fn + tp))
    # threshold is inclusive: prob exactly .5 counts as real
    assert metrics.decision_metrics([0.5, 0.4], [1, 0])["accuracy"] == 1.0


def test_decision_metrics_one_class():
    got = metrics.decision_metrics([0.9, 0.2, 0.7], [1, 1, 1])
    assert got["accuracy"] == pytest.approx(2 / 3)
    assert got["fnr"] == pytest.approx(1 / 3)
    assert np.isnan(got["fpr"])


def test_summarize_consistent_with_single_metrics():
    s, y = random_trials(7, ties=True)
    got = metrics.summarize(s, y)
    assert (got["eer"], got["eer_threshold"]) == metrics.compute_eer(s, y)
    assert (got["min_dcf"], got["min_dcf_threshold"]) == metrics.min_dcf(s, y)
    assert got["auc"] == metrics.roc_auc(s, y)
    assert got["cllr"] == metrics.cllr(s, y)
    assert got["act_dcf"] == metrics.act_dcf(s, y)
    assert got["accuracy"] == metrics.decision_metrics(metrics.sigmoid(s), y)["accuracy"]
    assert (got["n_real"], got["n_fake"]) == (int(y.sum()), int((1 - y).sum()))


def test_bootstrap_ci_seeded_and_sensible():
    s, y = random_trials(8, n=400)
    a = metrics.bootstrap_ci(s, y, 200, seed=1)
    assert a == metrics.bootstrap_ci(s, y, 200, seed=1)
    assert a != metrics.bootstrap_ci(s, y, 200, seed=2)
    eer = metrics.compute_eer(s, y)[0]
    mdcf = metrics.min_dcf(s, y)[0]
    assert a["eer"][0] < eer < a["eer"][1]
    assert a["min_dcf"][0] < mdcf < a["min_dcf"][1]
    # roughly the binomial standard error of an EER near .2 on ~200 trials per class
    assert 0.03 < a["eer"][1] - a["eer"][0] < 0.25


def test_calibration_fixes_misscaled_scores():
    rng = np.random.default_rng(9)

    def gaussian_trials(n):
        y = rng.integers(0, 2, n)
        x = rng.normal(size=n) + 2.0 * y  # true LLR = 2x - 2
        return 5.0 * x + 3.0, y  # deliberately mis-scaled and shifted

    dev_s, dev_y = gaussian_trials(4000)
    eval_s, eval_y = gaussian_trials(4000)
    cal = metrics.fit_calibration(dev_s, dev_y)
    assert cal.slope == pytest.approx(0.4, abs=0.04)
    assert cal.offset == pytest.approx(-2 - 3 * 0.4, abs=0.2)
    llr = cal(eval_s)
    assert metrics.act_dcf(llr, eval_y) < metrics.act_dcf(eval_s, eval_y) - 0.1
    assert metrics.cllr(llr, eval_y) < metrics.cllr(eval_s, eval_y) / 2
    # calibration is monotonic: discrimination is untouched
    assert metrics.compute_eer(llr, eval_y)[0] == metrics.compute_eer(eval_s, eval_y)[0]
    assert metrics.cllr(llr, eval_y) >= metrics.min_cllr(eval_s, eval_y)
