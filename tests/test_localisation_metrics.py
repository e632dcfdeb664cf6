"""Fake regions, segment labels, segment scores and localisation metrics on hand-made cases."""
import numpy as np
import pytest

from adf.localisation import metrics as lm
from adf.localisation.regions import (RegionError, format_regions, frame_count, frame_targets, parse_regions,
                                      regions_from_mask, row_regions, segment_labels)
from adf.localisation.scores import fake_regions, read_rttm, rttm_lines, segment_scores
from adf.metrics import compute_eer


def test_parse_and_format_regions():
    assert parse_regions("") == [] and parse_regions(None) == []
    assert parse_regions("1.2-1.5; 0.5-1.0;0.9-1.1") == [(0.5, 1.1), (1.2, 1.5)]
    assert format_regions([(0.5, 1.1), (1.2, 1.5)]) == "0.500-1.100;1.200-1.500"
    for bad in ("1-0.5", "a-b", "1.0", "-1-2", "1-2-3"):
        with pytest.raises(RegionError):
            parse_regions(bad)


def test_row_regions_empty_cell_means_whole_utterance():
    assert row_regions("real", "", 2.0) == []
    assert row_regions("fake", "", 2.0) == [(0.0, 2.0)]
    assert row_regions("fake", "0.5-1.0;1.8-2.5;3-4", 2.0) == [(0.5, 1.0), (1.8, 2.0)]


def test_segment_labels_any_and_majority():
    # 0.30 s at 40 ms: 8 segments, the last 20 ms long; fake 0.05-0.13
    regions = [(0.05, 0.13)]
    assert segment_labels(regions, 0.30, 0.04).tolist() == [1, 0, 0, 0, 1, 1, 1, 1]
    # majority: segment [0.04, 0.08) has 30 ms fake (> 20), [0.12, 0.16) only 10 ms
    assert segment_labels(regions, 0.30, 0.04, rule="majority").tolist() == [1, 0, 0, 1, 1, 1, 1, 1]


def test_frame_targets_by_frame_centre():
    # centres 12.5, 32.5, 52.5, 72.5, 92.5, 112.5 ms; fake 50-100 ms
    assert frame_targets([(0.05, 0.10)], 6).tolist() == [1, 1, 0, 0, 0, 1]


def test_frame_count_matches_the_backbone():
    import torch

    from adf.models.classifier import build_classifier

    model = build_classifier("tiny").eval()
    layers = model.config["extractor_conv_layer_config"]
    for n in (400, 719, 720, 16000, 23456):
        with torch.no_grad():
            feats, _ = model.backbone.feature_extractor(torch.zeros(1, n), None)
        assert frame_count(n, layers) == feats.shape[1], n


def test_weighted_eer_equals_the_plain_eer_and_replicated_trials():
    rng = np.random.default_rng(0)
    s = np.round(rng.normal(size=300), 1)  # ties
    y = rng.integers(0, 2, 300)
    assert lm.weighted_eer(s, y) == pytest.approx(compute_eer(s, y))
    w = rng.integers(0, 4, 300)
    assert lm.weighted_eer(s, y, w)[0] == pytest.approx(compute_eer(np.repeat(s, w), np.repeat(y, w))[0])


def test_segment_eer_hand_computed():
    # 80 ms at 20 ms: fake 20-50 ms -> labels [1, 0, 0, 1] (any)
    utt = (np.array([3.0, -1.0, 2.5, 2.0]), [(0.02, 0.05)], 0.08)
    # real {3, 2}, fake {-1, 2.5}: at t = 2, FRR = 1/2 and FAR = 1/2
    assert lm.segment_eer([utt], 0.02) == pytest.approx((0.5, 2.0))
    with pytest.raises(ValueError, match="3 segment scores"):
        lm.segment_eer([(np.zeros(3), [], 0.08)], 0.02)


def test_range_eer_counts_seconds_not_segments():
    # 1 s at 250 ms, fake 0.30-0.45 s, all inside segment 1 (score -1)
    utt = (np.array([2.0, -1.0, 0.5, 3.0]), [(0.30, 0.45)], 1.0)
    # point-based: segment 1 is fake and scored lowest -> 0
    assert lm.segment_eer([utt], 0.25)[0] == 0.0
    # range-based: at t = -1, 0.10 s of real (of 0.85) is called fake, no fake is missed:
    # FRR = 0.10 / 0.85, FAR = 0 -> EER = 0.05 / 0.85
    eer, threshold = lm.range_eer([utt], 0.25)
    assert eer == pytest.approx(0.05 / 0.85) and threshold == -1.0
    # two halves of 0.5 s, each 0.1 s fake: at t = -1, FRR = 0.4 / 0.8, FAR = 1 - 0.1 / 0.2
    assert lm.range_eer([(np.array([1.0, -1.0]), [(0.4, 0.6)], 1.0)], 0.5)[0] == pytest.approx(0.5)


def test_event_prf_with_collar():
    ref = [[(1.0, 2.0), (3.0, 3.5)]]
    hyp = [[(1.1, 2.15), (3.3, 3.5), (4.0, 5.0)]]
    # (1.1, 2.15) matches (1, 2); (3.3, 3.5) starts 0.3 s late; (4, 5) matches nothing
    out = lm.event_prf(ref, hyp, collar=0.2)
    assert (out["tp"], out["fp"], out["fn"]) == (1, 2, 1)
    assert out["precision"] == pytest.approx(1 / 3) and out["recall"] == 0.5 and out["f1"] == pytest.approx(0.4)
    assert lm.event_prf(ref, hyp, collar=0.3)["tp"] == 2
    # one predicted region cannot match two references
    assert lm.event_prf([[(0.0, 1.0), (1.05, 2.0)]], [[(0.0, 1.0)]], collar=0.1)["tp"] == 1


def test_duration_prf_with_collar():
    # no collar: fake 2-4 s, called 3-5 s -> 1 s found, 1 s false, 1 s missed
    out = lm.duration_prf([[(2.0, 4.0)]], [[(3.0, 5.0)]], [10.0])
    assert (out["tp"], out["fp"], out["fn"]) == pytest.approx((1.0, 1.0, 1.0))
    # collar 0.5 s leaves 1.5-2.5 and 3.5-4.5 unscored: called 2.2-5 -> tp 2.5-3.5, fp 4.5-5
    out = lm.duration_prf([[(2.0, 4.0)]], [[(2.2, 5.0)]], [10.0], collar=0.5)
    assert (out["tp"], out["fp"], out["fn"]) == pytest.approx((1.0, 0.5, 0.0))
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == 1.0 and out["f1"] == pytest.approx(0.8)


def test_segment_scores_from_frames():
    frames = [1.0, 2.0, 3.0, 4.0, 5.0]  # centres 12.5, 32.5, 52.5, 72.5, 92.5 ms
    assert segment_scores(frames, 0.1, 0.04).tolist() == [1.0, 3.0, 5.0]
    assert segment_scores(frames, 0.1, 0.04, aggregate="mean").tolist() == [1.5, 3.5, 5.0]
    # 10 ms segments: those without a frame centre take the nearest frame
    assert segment_scores(frames, 0.1, 0.01).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_fake_regions_and_rttm(tmp_path):
    regions = fake_regions([1.0, -1.0, -2.0, 1.0, -1.0], 0.1, 0.45)
    assert np.allclose(regions, [(0.1, 0.3), (0.4, 0.45)])
    assert regions_from_mask([], 0.1) == []
    path = tmp_path / "x.rttm"
    path.write_text("\n".join(rttm_lines("utt1", regions)) + "\n")
    assert np.allclose(read_rttm(path)["utt1"], regions, atol=1e-3)


def test_evaluate_reads_segment_scores_and_coarsens_them(tmp_path):
    import pandas as pd

    from adf.localisation.evaluate import evaluate, markdown, read_segment_scores

    # utterance a: 0.16 s at 40 ms, fake 0.04-0.08; b: real throughout; c: fake row, no regions
    rows = [("a", [2.0, -1.0, 1.0, 3.0]), ("b", [2.5, 1.5, 0.5, 2.0]), ("c", [-2.0, -0.5, 0.1, -1.5])]
    seg = pd.DataFrame([{"id": i, "start": k * 0.04, "end": (k + 1) * 0.04, "score": s}
                        for i, scores in rows for k, s in enumerate(scores)])
    seg.to_csv(tmp_path / "seg.csv", index=False)
    key = pd.DataFrame({"ID": ["a", "b", "c"], "Label": ["fake", "real", "fake"],
                        "FakeRegions": ["0.04-0.08", "", ""]}).set_index("ID", drop=False)
    report = evaluate(read_segment_scores(tmp_path / "seg.csv"), key, resolutions=(0.04, 0.08, 0.02),
                      collar=0.0, threshold=0.0)
    assert report["resolution"] == pytest.approx(0.04) and report["skipped_resolutions"] == [0.02]
    assert report["n_utterances"] == 3 and report["n_partial"] == 1
    # 40 ms: real {2, 1, 3, 2.5, 1.5, 0.5, 2}, fake {-1, -2, -0.5, 0.1, -1.5}: separated
    assert report["segment_eer"][0.04] == 0.0
    # 80 ms (min of pairs): a -> [-1 fake, 1 real]; b -> [1.5, 0.5] real; c -> [-2, -1.5] fake: separated
    assert report["segment_eer"][0.08] == 0.0
    # called fake (score < 0): a 0.04-0.08 (exact), c 0-0.08 and 0.12-0.16 (0.08-0.12 scores 0.1)
    assert (report["event"]["tp"], report["event"]["fp"], report["event"]["fn"]) == (1, 2, 1)
    assert report["duration"]["recall"] == pytest.approx(0.16 / 0.2)  # c's 0.08-0.12 missed
    assert report["duration"]["precision"] == 1.0
    assert "seg. EER 40 ms" in markdown(report)


def test_detect_resolution_writes_segments_and_rttm(tmp_path, ckpt):
    import pandas as pd
    import soundfile as sf
    import torch

    from adf.checkpoints import load_model
    from adf.cli import main
    from adf.localisation.detect import frame_logits

    rng = np.random.default_rng(0)
    wav = tmp_path / "clip.wav"
    sf.write(wav, (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    out = tmp_path / "utt.csv"
    assert main(["detect", "--ckpt", ckpt, "--precision", "fp32", "--resolution", "0.04",
                 "--threshold", "0.1", "-o", str(out), str(wav)]) == 0
    seg = pd.read_csv(tmp_path / "utt.segments.csv")
    assert len(seg) == 25 and seg["end"].iloc[-1] == pytest.approx(1.0)
    # independent path: the model's utterance logits and its frame logits by hand
    model = load_model(ckpt).eval()
    from adf.audio import load_for_model

    with torch.no_grad():
        x = load_for_model(str(wav))[None]
        utt = model(x)[0].numpy()
        frames = model(x, None, return_frames=True)[0][0].numpy()
    row = pd.read_csv(out).iloc[0]
    assert np.allclose([row.logit_fake, row.logit_real], utt, atol=1e-4)
    scores = frames[:, 1] - frames[:, 0]
    assert np.allclose(frame_logits(model, str(wav))[:, 1] - frame_logits(model, str(wav))[:, 0], scores)
    assert np.allclose(seg["score"], segment_scores(scores, 1.0, 0.04), atol=1e-6)
    expected = fake_regions(seg["score"].to_numpy(), 0.04, 1.0, threshold=0.1)
    got = read_rttm(tmp_path / "utt.rttm").get("clip", [])
    assert np.allclose(got, expected, atol=1e-3) and len(got) == len(expected)


def test_evaluate_at_the_eer_threshold():
    import pandas as pd

    from adf.localisation.evaluate import evaluate

    # scores all below 0 (an uncalibrated model) but ordered: fake segments lowest
    segs = {"a": (0.16, 0.04, np.array([-1.0, -3.0, -2.5, -1.5]))}
    key = pd.DataFrame({"ID": ["a"], "Label": ["fake"], "FakeRegions": ["0.04-0.12"]}).set_index("ID", drop=False)
    at_zero = evaluate(segs, key, resolutions=(0.04,), collar=0.0, threshold=0.0)
    assert at_zero["duration"]["precision"] == pytest.approx(0.5)  # everything called fake
    at_eer = evaluate(segs, key, resolutions=(0.04,), collar=0.0, threshold="eer")
    # EER threshold -2.5: segments at or below it (-3, -2.5) are fake = exactly the reference
    assert at_eer["threshold"] > -2.5 and at_eer["event"]["f1"] == 1.0 and at_eer["duration"]["f1"] == 1.0


def test_score_segments_command_reports_what_evaluate_computes(tmp_path, capsys):
    """`adf score-segments` on the hand-made case above: the same EERs and counts, as JSON."""
    import json

    import pandas as pd

    from adf.cli import main
    from tests.synth import write_manifest

    rows = [("a", [2.0, -1.0, 1.0, 3.0]), ("b", [2.5, 1.5, 0.5, 2.0]), ("c", [-2.0, -0.5, 0.1, -1.5])]
    pd.DataFrame([{"id": i, "start": k * 0.04, "end": (k + 1) * 0.04, "score": s}
                  for i, scores in rows for k, s in enumerate(scores)]).to_csv(tmp_path / "seg.csv", index=False)
    key = write_manifest(tmp_path / "key.csv", [
        dict(ID="a", Label="fake", FakeRegions="0.04-0.08", Path="a.wav"),
        dict(ID="b", Label="real", FakeRegions="", Path="b.wav"),
        dict(ID="c", Label="fake", FakeRegions="", Path="c.wav")])
    out = tmp_path / "report.json"
    assert main(["score-segments", str(tmp_path / "seg.csv"), "--key", key, "--resolutions", "0.04,0.08",
                 "--collar", "0", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n_utterances"] == 3 and report["n_partial"] == 1
    assert report["segment_eer"] == {"0.04": 0.0, "0.08": 0.0}
    assert (report["event"]["tp"], report["event"]["fp"], report["event"]["fn"]) == (1, 2, 1)
    assert "seg. EER 40 ms" in capsys.readouterr().out
    # a bad threshold is one error line, not a traceback
    assert main(["score-segments", str(tmp_path / "seg.csv"), "--key", key, "--threshold", "x"]) == 2
