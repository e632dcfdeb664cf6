"""`adf serve`: the HTTP API against a tiny checkpoint (FastAPI's TestClient).

Scores are checked against `adf detect --precision fp32` on the same files and
against an independent one-file-at-a-time forward pass; batching is checked by
the batch sizes the adapter records."""
import asyncio
import hashlib
import io
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from fastapi.testclient import TestClient

from adf.checkpoints import load_model
from adf.cli import main
from adf.serve.adapter import ModelAdapter
from adf.serve.app import ServeConfig, create_app
from adf.serve.batching import NONFINITE, BatchQueue, QueueFull, ScoringFailed
from adf.serve.upload import ServeLimits
from tests.synth import write_noise as noise
from tests.test_detect import expected_logits


@pytest.fixture(scope="module")
def adapter(ckpt):
    return ModelAdapter.load(ckpt, precision="fp32")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {"mono.wav": noise(d / "mono.wav", 1.5, 16000, seed=1),
            "stereo.flac": noise(d / "stereo.flac", 1.2, 44100, channels=2, seed=2),
            "low.ogg": noise(d / "low.ogg", 0.7, 22050, seed=3),
            "short.wav": noise(d / "short.wav", 0.4, 8000, seed=4)}


def serve(adapter, **settings):
    limits = settings.pop("limits", ServeLimits())
    return TestClient(create_app(adapter, ServeConfig(limits=limits, **settings)))


def post_file(client, path, params=None, raw=False):
    data = open(path, "rb").read()
    if raw:
        return client.post("/v1/detect", params=params, content=data)
    return client.post("/v1/detect", params=params, files={"file": (path.rsplit("/", 1)[-1], data)})


def detect_csv(ckpt, tmp_path, paths, *extra):
    out = tmp_path / "out.csv"
    assert main(["detect", "--ckpt", ckpt, "-o", str(out), "--precision", "fp32", "--workers", "0",
                 "--batch-size", "1", "--ids", "path", "--overwrite", *map(str, extra), *paths]) == 0
    return pd.read_csv(out).set_index("path")


def test_scores_equal_adf_detect(ckpt, adapter, clips, tmp_path):
    paths = list(clips.values())
    whole = detect_csv(ckpt, tmp_path, paths)
    seg_csv = tmp_path / "seg.csv"
    windowed = detect_csv(ckpt, tmp_path, paths, "--window", 0.5, "--hop", 0.25, "--segments", seg_csv)
    segments = pd.read_csv(seg_csv)
    with serve(adapter, threshold=0.48) as client:
        for name, path in clips.items():
            for raw in (False, True):
                r = post_file(client, path, raw=raw)
                assert r.status_code == 200, r.text
                got = r.json()
                row = whole.loc[path]
                assert [got["logits"]["fake"], got["logits"]["real"]] == pytest.approx(
                    [row.logit_fake, row.logit_real], abs=1e-6)
                assert got["prob_real"] == pytest.approx(row.prob_real, abs=1e-6)
                assert got["decision"] == ("real" if got["prob_real"] >= 0.48 else "fake")
                assert got["filename"] == (None if raw else name) and got["windows"] is None
                info = sf.info(path)
                assert (got["duration"], got["sample_rate"], got["channels"]) == (
                    pytest.approx(info.frames / info.samplerate), info.samplerate, info.channels)
            # windows: each as `adf detect --window --segments`; aggregate mean as `adf detect --window`
            r = post_file(client, path, params={"window": 0.5, "hop": 0.25, "aggregate": "mean"})
            got = r.json()
            rows = segments[segments["path"] == path].sort_values("start")
            spans = [[w["start"], w["end"]] for w in got["windows"]]
            np.testing.assert_allclose(spans, rows[["start", "end"]].values, atol=1e-9)
            np.testing.assert_allclose([[w["logit_fake"], w["logit_real"]] for w in got["windows"]],
                                       rows[["logit_fake", "logit_real"]].values, atol=1e-6, rtol=0)
            assert [got["logits"]["fake"], got["logits"]["real"]] == pytest.approx(
                [windowed.loc[path].logit_fake, windowed.loc[path].logit_real], abs=1e-6)
            # windows asked for beside the whole-file score leave that score as it is
            both = post_file(client, path, params={"windows": 1, "window": 0.5, "hop": 0.25}).json()
            assert both["aggregate"] == "whole" and len(both["windows"]) == len(rows)
            assert both["prob_real"] == pytest.approx(whole.loc[path].prob_real, abs=1e-6)


def test_onnxruntime_engine_serves_the_same_scores(ckpt, adapter, clips, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("ADF_CACHE_DIR", str(tmp_path))
    engine = ModelAdapter.load(ckpt, engine="onnxruntime")
    assert engine.info["engine"] == "onnxruntime" and engine.info["precision"] == "fp32"
    assert engine.info["parameters"] == adapter.info["parameters"]
    from adf.audio import load_16k

    waves = [load_16k(p) for p in clips.values()]
    np.testing.assert_allclose(engine.score_waveforms(waves), adapter.score_waveforms(waves), atol=1e-4, rtol=0)


def test_model_info_health_docs_and_page(ckpt, adapter):
    model = load_model(ckpt)
    with serve(adapter, max_batch=3) as client:
        info = client.get("/v1/model").json()
        assert info["name"] == "tiny" and info["input_policy"] == "whole"
        assert info["parameters"] == sum(p.numel() for p in model.parameters())
        assert info["checkpoint_sha256"] == hashlib.sha256(open(ckpt, "rb").read()).hexdigest()
        assert info["batching"]["max_batch"] == 3 and info["precision"] == "fp32"
        assert client.get("/healthz").json()["status"] == "ok"
        spec = client.get("/openapi.json").json()
        assert {"multipart/form-data", "application/octet-stream"} <= set(
            spec["paths"]["/v1/detect"]["post"]["requestBody"]["content"])
        docs = client.get("/docs").text
        assert "swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
        assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
        page = client.get("/").text
        assert 'id="file"' in page and 'id="timeline"' in page
        assert not any(f'{attr}="http' in page for attr in ("src", "href"))  # nothing from elsewhere


def test_concurrent_requests_are_batched_and_equal_single_scores(ckpt, adapter, clips):
    adapter.batch_sizes.clear()
    paths = list(clips.values())
    # The first input waits up to a minute for company: the four requests form one batch.
    with serve(adapter, max_batch=4, max_wait_ms=60_000) as client, ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda p: post_file(client, p), paths))
    assert adapter.batch_sizes == [4]
    for path, r in zip(paths, replies):
        assert r.status_code == 200, r.text
        got = r.json()["logits"]
        assert [got["fake"], got["real"]] == pytest.approx(expected_logits(ckpt, path), abs=1e-5)


def _run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_batch_queue_splits_and_maps_results():
    """Inputs of several requests share batches of at most max_batch; each request
    gets its own results back in order; a failing input fails its request alone."""
    sizes = []

    def score(waves):
        sizes.append(len(waves))
        if any(w[0] < 0 for w in waves):
            raise RuntimeError("boom")
        return [(float(w[0]), float(len(w))) for w in waves]

    async def scenario():
        queue = BatchQueue(score, max_batch=3, max_wait_ms=0, max_queue=10)
        jobs = [[torch.full((n,), float(j)) for n in (5, 6, 7)[: 1 + j % 3]] for j in range(5)]
        jobs[3] = [torch.full((4,), -1.0)]  # fails alone
        jobs.append([torch.tensor([float("nan"), 1.0])])  # non-finite logits
        tasks = [asyncio.ensure_future(queue.submit(j)) for j in jobs]
        await asyncio.sleep(0)  # all queued before the worker starts: the batches are known
        queue.start()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        queue.stop()
        return jobs, results

    jobs, results = _run(scenario())
    for j, (job, result) in enumerate(zip(jobs, results)):
        if j == 3:
            assert isinstance(result, ScoringFailed) and "boom" in str(result)
        elif j == 5:
            assert isinstance(result, ScoringFailed) and str(result) == NONFINITE
        else:
            assert result == [(float(j), float(len(w))) for w in job]
    # inputs in order: j0 | j1 j1 | j2 j2 j2 | j3 (bad) | j4 j4 | j5 (NaN): batches of 3 in
    # arrival order; the one holding j3 is retried one input at a time
    assert sizes == [3, 3, 3, 1, 1, 1, 1]


def test_queue_bound():
    async def scenario():
        queue = BatchQueue(lambda waves: [(0.0, 0.0)] * len(waves), max_batch=1, max_queue=2)
        first = [asyncio.ensure_future(queue.submit([torch.zeros(3)])) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull) as err:
            await queue.submit([torch.zeros(3)])
        assert err.value.retry_after >= 1
        queue.start()
        done = await asyncio.gather(*first)
        queue.stop()
        return done

    assert _run(scenario()) == [[(0.0, 0.0)], [(0.0, 0.0)]]


def _wav_bytes(samples, sr, subtype="PCM_16"):
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def test_limits_and_bad_audio(adapter, clips):
    limits = ServeLimits(max_upload_bytes=100_000, max_seconds=2.0)
    rng = np.random.default_rng(0)
    three_s = _wav_bytes(0.1 * rng.standard_normal(3 * 8000), 8000)  # 48 KB, 3 s
    big = _wav_bytes(0.1 * rng.standard_normal(60_000), 16000)  # 120 KB
    truncated = _wav_bytes(0.1 * rng.standard_normal(16000), 16000)[:20_000]
    with serve(adapter, limits=limits) as client:
        for body in ({"content": big}, {"files": {"file": ("big.wav", big)}},
                     {"content": iter([big[:50_000], big[50_000:]])}):  # chunked: no Content-Length
            r = client.post("/v1/detect", **body)
            assert r.status_code == 413 and "100000 bytes" in r.json()["detail"]
        r = client.post("/v1/detect", files={"file": ("long.wav", three_s)})
        assert r.status_code == 413 and "3.0 s" in r.json()["detail"] and "2 s" in r.json()["detail"]
        bad = {
            "empty": ({"content": b""}, "empty (0 bytes)"),
            "junk": ({"files": {"file": ("junk.wav", b"RIFF" + b"\x00junk" * 50)}}, "junk.wav: cannot decode"),
            "no samples": ({"content": _wav_bytes(np.zeros(0, "float32"), 16000)}, "no audio samples"),
            "truncated": ({"files": {"file": ("cut.wav", truncated)}}, "cut.wav: truncated"),
            "rate": ({"content": _wav_bytes(np.zeros(800, "float32"), 1000)}, "sample rate 1000 Hz"),
            "too short": ({"content": _wav_bytes(0.1 * rng.standard_normal(200), 16000)}, "too short"),
            "no file": ({"files": {"other": (None, "text")}}, "no file"),
        }
        for what, (body, reason) in bad.items():
            r = client.post("/v1/detect", **body)
            assert r.status_code == 400 and reason in r.json()["detail"], (what, r.text)
            assert "/tmp" not in r.json()["detail"]  # the temporary file stays private
        assert client.post("/v1/detect", params={"window": 1, "hop": 2}, content=b"x").status_code == 422
        # 1.5 s in 1 s windows every 0.5 ms: 1001 windows, about 750 s of audio > 4 x 2 s
        r = post_file(client, clips["mono.wav"], params={"window": 1, "hop": 0.0005})
        assert r.status_code == 413 and "use a longer hop" in r.json()["detail"]
        # the service is still up and scores good audio
        assert post_file(client, clips["mono.wav"]).status_code == 200


class Gated:
    """An adapter whose scoring waits for `release` (and says when it started)."""

    def __init__(self, inner):
        self.inner, self.min_samples, self.info = inner, inner.min_samples, inner.info
        self.entered, self.release = threading.Event(), threading.Event()

    def score_waveforms(self, waves):
        self.entered.set()
        assert self.release.wait(120)
        return self.inner.score_waveforms(waves)


def test_full_queue_is_503_with_retry_after(adapter, clips):
    gated = Gated(adapter)
    path = clips["mono.wav"]
    with serve(gated, max_batch=1, max_wait_ms=0, max_queue=1) as client, ThreadPoolExecutor(2) as pool:
        batcher = client.app.state.batcher
        first = pool.submit(post_file, client, path)
        assert gated.entered.wait(120)  # the first request is in the model
        second = pool.submit(post_file, client, path)
        for _ in range(12000):  # until the second one waits in the queue
            if batcher.waiting == 1:
                break
            threading.Event().wait(0.01)
        r = post_file(client, path)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1 and "busy" in r.json()["detail"]
        gated.release.set()
        assert first.result().status_code == 200 and second.result().status_code == 200
        assert post_file(client, path).status_code == 200


class FailsOnLength:
    """An adapter whose model raises whenever a batch holds an input of `bad` samples."""

    def __init__(self, inner, bad):
        self.inner, self.min_samples, self.info, self.bad = inner, inner.min_samples, inner.info, bad
        self.batch_sizes = []

    def score_waveforms(self, waves):
        self.batch_sizes.append(len(waves))
        if any(len(w) == self.bad for w in waves):
            raise RuntimeError("simulated failure")
        return self.inner.score_waveforms(waves)


def test_model_failure_hits_one_request_only(ckpt, adapter, clips):
    failing = FailsOnLength(adapter, bad=round(0.7 * 16000))  # low.ogg, resampled to 16 kHz
    good, bad = clips["mono.wav"], clips["low.ogg"]
    with serve(failing, max_batch=2, max_wait_ms=60_000) as client, ThreadPoolExecutor(2) as pool:
        r_good, r_bad = pool.map(lambda p: post_file(client, p), [good, bad])
    assert failing.batch_sizes == [2, 1, 1]  # together, then each alone
    assert r_bad.status_code == 500 and "simulated failure" in r_bad.json()["detail"]
    assert r_good.status_code == 200
    got = r_good.json()["logits"]
    assert [got["fake"], got["real"]] == pytest.approx(expected_logits(ckpt, good), abs=1e-5)


def test_hub_model_name(ckpt, tmp_path, monkeypatch):
    """`--ckpt ORG/NAME` loads from the Hugging Face cache as `adf detect` does; /v1/model says so."""
    from tests.hub_cache import add_snapshot, use_offline_cache

    data = open(ckpt, "rb").read()
    add_snapshot(tmp_path, "someone/tiny-detector", "a" * 40, {"model.safetensors": data}, refs=["main"])
    use_offline_cache(monkeypatch, tmp_path)
    with serve(ModelAdapter.load("someone/tiny-detector", device="cpu", precision="fp32")) as client:
        info = client.get("/v1/model").json()
    assert info["source"] == "someone/tiny-detector" and info["checkpoint"] == "model.safetensors"
    assert info["checkpoint_sha256"] == hashlib.sha256(data).hexdigest()


def test_command_line_checks(ckpt, capsys):
    assert main(["serve", "--ckpt", ckpt, "--threshold", "1.5"]) == 2
    assert "--threshold" in capsys.readouterr().err
    assert main(["serve", "--ckpt", ckpt, "--max-batch", "0"]) == 2
