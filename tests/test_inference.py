"""The scoring engine (adf.inference) against independent computations with the tiny model."""
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from adf.audio import load_for_model, resample, to_mono, waveform_layer_norm
from adf.inference import Item, plan_windows, probe, receptive_field, score_items
from adf.models.classifier import build_classifier
from adf.resumable_csv import ResumableCSV
from adf.scorefile import read_score_rows
from tests.synth import write_noise


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_classifier("tiny").eval()


def reference_logits(model, wav):
    """What the model gives a single preprocessed waveform, no batching or engine involved."""
    with torch.inference_mode():
        return model(wav[None])[0].tolist()


@pytest.fixture()
def mixed_files(tmp_path):
    """Files of different lengths, rates and channel counts."""
    specs = [(0.7, 16000, 1), (1.3, 8000, 1), (0.4, 44100, 2), (1.0, 22050, 1), (0.2, 16000, 3)]
    return [Item(f"f{k}", write_noise(tmp_path / f"f{k}.wav", s, sr, ch, seed=k))
            for k, (s, sr, ch) in enumerate(specs)]


def by_id(scores):
    return {s.item.id: s for s in scores}


def test_scores_equal_model_on_load_for_model(model, mixed_files):
    """Exact preprocessing parity: the engine's logits are the model's on load_for_model."""
    scores = by_id(score_items(model, mixed_files, batch_size=1))
    assert set(scores) == {i.id for i in mixed_files}
    for item in mixed_files:
        expected = reference_logits(model, load_for_model(item.path))
        got = scores[item.id]
        assert got.ok
        assert [got.logit_fake, got.logit_real] == pytest.approx(expected, abs=1e-6)
        assert got.seconds == pytest.approx(sf.info(item.path).duration)


def test_batching_does_not_change_scores(model, mixed_files):
    """Length-sorted padded batches (and worker processes) give one-by-one scores."""
    alone = by_id(score_items(model, mixed_files, batch_size=1))
    batched = by_id(score_items(model, mixed_files, batch_size=4, workers=1))
    for key, score in alone.items():
        assert [batched[key].logit_fake, batched[key].logit_real] == pytest.approx(
            [score.logit_fake, score.logit_real], abs=1e-5)


def test_prob_real_is_softmax_of_logits(model, mixed_files):
    for score in score_items(model, mixed_files[:2]):
        expected = math.exp(score.logit_real) / (math.exp(score.logit_fake) + math.exp(score.logit_real))
        assert score.prob_real == pytest.approx(expected, abs=1e-12)


def test_bf16_runs_and_agrees_loosely(model, mixed_files):
    fp32 = by_id(score_items(model, mixed_files, batch_size=3))
    bf16 = by_id(score_items(model, mixed_files, batch_size=3, precision="bf16"))
    spread = np.std([s.logit_real for s in fp32.values()])
    for key, score in fp32.items():
        assert abs(bf16[key].logit_real - score.logit_real) < 0.05
        assert abs(bf16[key].logit_fake - score.logit_fake) < 0.05
    assert spread > 0  # the scores differ between files, so the comparison means something


def test_fp16_on_cpu_is_a_clear_error(model, mixed_files):
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        list(score_items(model, mixed_files, precision="fp16"))


def test_segment_items_score_the_sample_range(model, tmp_path):
    path = write_noise(tmp_path / "long.wav", 2.0, 8000)
    item = Item("seg", path, start=4000, stop=12000)
    (score,) = score_items(model, [item])
    assert [score.logit_fake, score.logit_real] == pytest.approx(
        reference_logits(model, load_for_model(path, 4000, 12000)), abs=1e-6)
    assert score.seconds == pytest.approx(1.0)


def test_bad_items_are_reported_and_the_rest_scored(model, tmp_path):
    good = Item("good", write_noise(tmp_path / "good.wav", 0.5, 16000))
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF" + b"\x00junk" * 40)
    sf.write(tmp_path / "zero.wav", np.zeros(0, dtype="float32"), 16000)
    bad = {
        "missing": (Item("missing", str(tmp_path / "nope.wav")), "does not exist"),
        "empty": (Item("empty", str(tmp_path / "empty.wav")), "empty (0 bytes)"),
        "corrupt": (Item("corrupt", str(tmp_path / "corrupt.wav")), "cannot decode"),
        "zero": (Item("zero", str(tmp_path / "zero.wav")), "no audio samples"),
        "tiny": (Item("tiny", write_noise(tmp_path / "tiny.wav", 0.01, 16000)), "too short"),
        "range": (Item("range", good.path, start=100, stop=10**6), "outside the file"),
    }
    scores = by_id(score_items(model, [good] + [item for item, _ in bad.values()], batch_size=2))
    assert scores["good"].ok
    for key, (_, reason) in bad.items():
        assert not scores[key].ok and reason in scores[key].error, (key, scores[key].error)


def test_probe_reads_headers(tmp_path):
    path = write_noise(tmp_path / "a.flac", 1.5, 22050, channels=2)
    assert probe(Item("a", path)) == (0, 33075, 22050)
    assert probe(Item("a", path, 100, 200)) == (100, 200, 22050)


def test_plan_windows_by_hand():
    # 10 s at 1 kHz, 4 s windows every 4 s: tiles with the 2 s remainder kept.
    assert plan_windows(0, 10000, 1000, 4, 4, 400) == [(0, 4000), (4000, 8000), (8000, 10000)]
    # Overlapping: starts every 3 s until a window reaches the end.
    assert plan_windows(0, 10000, 1000, 4, 3, 400) == [(0, 4000), (3000, 7000), (6000, 10000)]
    # A remainder shorter than the receptive field (400 samples at 16 kHz = 25 ms) is dropped.
    assert plan_windows(0, 8010, 1000, 4, 4, 400) == [(0, 4000), (4000, 8000)]
    # Short spans are one window; offsets carry over.
    assert plan_windows(500, 2500, 1000, 4, 4, 400) == [(500, 2500)]
    assert receptive_field(build_classifier("tiny")) == 400


def test_windows_of_a_spliced_file(model, tmp_path):
    """Noise then a tone: every window scores its own stretch, with correct times,
    and both aggregations follow from the window logits."""
    sr = 8000
    rng = np.random.default_rng(3)
    first = 0.1 * rng.standard_normal(int(1.5 * sr))
    t = np.arange(int(1.5 * sr)) / sr
    second = 0.3 * np.sin(2 * np.pi * 440 * t)
    wav = np.concatenate([first, second]).astype("float32")
    path = str(tmp_path / "spliced.wav")
    sf.write(path, wav, sr)
    wav, _ = sf.read(path, dtype="float32")  # as stored (16-bit PCM)
    item = Item("spliced", path)

    (mean,) = score_items(model, [item], batch_size=3, window=1.0, hop=0.5, aggregate="mean")
    (worst,) = score_items(model, [item], batch_size=1, window=1.0, hop=0.5, aggregate="min")
    starts = [w.start for w in mean.windows]
    ends = [w.end for w in mean.windows]
    assert starts == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    assert ends == pytest.approx([1.0, 1.5, 2.0, 2.5, 3.0])
    for w in mean.windows:
        segment = torch.from_numpy(wav[round(w.start * sr) : round(w.end * sr)])
        expected = reference_logits(model, waveform_layer_norm(resample(to_mono(segment[None]), sr)))
        assert [w.logit_fake, w.logit_real] == pytest.approx(expected, abs=1e-6)
    scores = [w.logit_real - w.logit_fake for w in mean.windows]
    assert max(scores) - min(scores) > 1e-3  # noise and tone windows score differently
    assert mean.logit_fake == pytest.approx(np.mean([w.logit_fake for w in mean.windows]))
    assert mean.logit_real == pytest.approx(np.mean([w.logit_real for w in mean.windows]))
    lowest = mean.windows[int(np.argmin(scores))]
    assert (worst.logit_fake, worst.logit_real) == pytest.approx((lowest.logit_fake, lowest.logit_real), abs=1e-6)
    assert mean.seconds == pytest.approx(3.0)


def test_window_longer_than_file_is_whole_file_scoring(model, tmp_path):
    path = write_noise(tmp_path / "short.wav", 0.8, 16000)
    (whole,) = score_items(model, [Item("s", path)])
    (windowed,) = score_items(model, [Item("s", path)], window=5.0)
    assert (windowed.logit_fake, windowed.logit_real) == pytest.approx((whole.logit_fake, whole.logit_real))
    assert len(windowed.windows) == 1


def test_resumable_csv_keeps_complete_rows_only(tmp_path):
    out = tmp_path / "s.csv"
    key = lambda r: (r["path"], r["id"])  # noqa: E731
    cols = ["id", "path", "logit_fake", "logit_real", "prob_real"]
    # A side file cut off in the middle of its second row, as a kill leaves it.
    (tmp_path / "s.csv.partial").write_text(
        "id,path,logit_fake,logit_real,prob_real\na,a.wav,0.5,1.5,0.7310585786300049\nb,b.wav,0.2,0.")
    csv_ = ResumableCSV(out, cols, key)
    assert [r["id"] for r in csv_.previous] == ["a"]
    csv_.append([{"id": "b", "path": "b.wav", "logit_fake": "0.25", "logit_real": "1.0", "prob_real": "0.6"}])
    assert [r["id"] for r in read_score_rows(tmp_path / "s.csv.partial")] == ["a", "b"]
    assert not out.exists()  # only finalize writes the output
    assert csv_.finalize(sort_key=lambda r: r["id"]) == 2
    assert not (tmp_path / "s.csv.partial").exists()
    rows = read_score_rows(out)
    assert [(r["id"], r["logit_fake"]) for r in rows] == [("a", "0.5"), ("b", "0.25")]


def test_resumable_csv_refuses_a_foreign_file(tmp_path):
    other = tmp_path / "notes.csv"
    other.write_text("name,value\nx,1\n")
    with pytest.raises(ValueError, match="not a score CSV"):
        ResumableCSV(other, ["id", "path", "logit_fake", "logit_real"], lambda r: r["id"])
    assert other.read_text() == "name,value\nx,1\n"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_matches_cpu(model, mixed_files, precision):
    cpu = by_id(score_items(model, mixed_files, batch_size=1))
    gpu = by_id(score_items(model, mixed_files, batch_size=4, workers=1, device="cuda", precision=precision))
    model.cpu()
    tol = 1e-4 if precision == "fp32" else 0.05
    for key, score in cpu.items():
        assert [gpu[key].logit_fake, gpu[key].logit_real] == pytest.approx(
            [score.logit_fake, score.logit_real], abs=tol)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bf16_weights_on_cuda_match_the_cpu(mixed_files, tmp_path):
    """Pure bf16 weights on CUDA, however they got there: cast on the CPU and moved
    (the CPU's fp32 layer norms are cast on the way), loaded onto the device in bf16,
    or cast there. CUDA's layer norm wants input and parameters in one dtype."""
    import copy

    from adf.checkpoints import load_model, save_checkpoint

    torch.manual_seed(0)
    ref = build_classifier("tiny").eval()
    save_checkpoint(ref, tmp_path / "m.safetensors")
    cpu = by_id(score_items(ref, mixed_files, batch_size=1))
    variants = {"moved": copy.deepcopy(ref).set_precision("bf16").to("cuda"),
                "loaded": load_model(tmp_path / "m.safetensors", device="cuda", dtype=torch.bfloat16),
                "cast_there": copy.deepcopy(ref).to("cuda").set_precision("bf16")}
    for name, model in variants.items():
        assert {p.dtype for n, p in model.named_parameters() if "layer_norm" in n} == {torch.bfloat16}, name
        gpu = by_id(score_items(model, mixed_files, batch_size=4, device="cuda", precision="bf16"))
        for key, score in cpu.items():
            assert [gpu[key].logit_fake, gpu[key].logit_real] == pytest.approx(
                [score.logit_fake, score.logit_real], abs=0.05), name


def test_manifest_items_and_write_score_csv(model, tmp_path):
    import pandas as pd

    from adf.data.manifest import COLUMNS
    from adf.inference import manifest_items
    from adf.scorefile import write_score_csv

    write_noise(tmp_path / "r.wav", 0.5, 16000)
    rows = []
    for i, (label, name, start, stop) in enumerate([("real", "r.wav", 0, 4000), ("fake", "r.wav", -1, -1),
                                                    ("fake", "gone.wav", -1, -1)]):
        rec = dict.fromkeys(COLUMNS, "-")
        rec.update(ID=f"T-{i}", Label=label, Duration=0.5, SampleRate=16000, Path=f"$ROOT/{name}",
                   AudioChannel=1, Start=start, Stop=stop)
        rows.append(rec)
    rows.append(dict(rows[0], ID="T-bad", Label="maybe"))
    man = tmp_path / "m.csv"
    pd.DataFrame(rows).to_csv(man, index=False)

    items, problems = manifest_items(man, data_root=tmp_path)
    assert items == [Item("T-0", f"{tmp_path}/r.wav", 0, 4000, 1), Item("T-1", f"{tmp_path}/r.wav", 0, None, 0),
                     Item("T-2", f"{tmp_path}/gone.wav", 0, None, 0)]
    assert len(problems) == 1 and "row 5, column Label" in problems[0]
    assert "give the data root" in manifest_items(man)[1][0]

    scores = list(score_items(model, items))
    assert write_score_csv(scores, tmp_path / "s.csv") == 2
    out = pd.read_csv(tmp_path / "s.csv")
    assert list(out.columns) == ["id", "path", "logit_fake", "logit_real", "prob_real", "label"]
    assert sorted(zip(out["id"], out["label"])) == [("T-0", 1), ("T-1", 0)]
    expected = reference_logits(model, load_for_model(f"{tmp_path}/r.wav", 0, 4000))
    assert out.set_index("id").loc["T-0", ["logit_fake", "logit_real"]].tolist() == pytest.approx(expected, abs=1e-6)


def test_a_window_that_cannot_be_decoded_fails_its_item_only(model, tmp_path):
    """A FLAC damaged in the middle: its header reads, its middle window does not."""
    path = write_noise(tmp_path / "damaged.flac", 3.0, 16000)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2 : len(data) // 2 + 4000] = bytes(4000)
    open(path, "wb").write(data)
    good = Item("good", write_noise(tmp_path / "good.wav", 2.5, 16000))
    scores = list(score_items(model, [Item("damaged", path), good], batch_size=2, window=1.0))
    assert [(s.item.id, s.ok) for s in scores] == [("damaged", False), ("good", True)]
    assert "cannot decode" in scores[0].error
    assert [w.start for w in scores[1].windows] == [0.0, 1.0, 2.0]


def test_next_batch_is_queued_before_a_batch_is_read(model, mixed_files, monkeypatch):
    """One batch in flight: batch n's scores come out only after batch n+1's forward
    pass was launched (so a GPU never idles while the host reads results), and
    every item still comes out exactly once, the last batch included."""
    events, forward = [], type(model).forward

    def recording_forward(self, wav, *args, **kwargs):
        events.append(("forward", wav.shape[0]))
        return forward(self, wav, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", recording_forward)
    for score in score_items(model, mixed_files, batch_size=1):
        events.append(("score", score.item.id))
    kinds = [kind for kind, _ in events]
    assert kinds.count("forward") == len(mixed_files) == kinds.count("score")
    # forward, forward, score, forward, score, ..., score, score
    assert kinds == ["forward"] + ["forward", "score"] * (len(mixed_files) - 1) + ["score"]
    assert {i for kind, i in events if kind == "score"} == {item.id for item in mixed_files}
