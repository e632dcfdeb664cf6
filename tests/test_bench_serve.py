"""Smoke run of bench/serve.py (tiny model, two clients, a second per setting)."""
import json
import subprocess
import sys

from tests.test_bench import ROOT, bench_env


def test_serve_bench_smoke(tmp_path):
    env = bench_env(OUT=tmp_path, PYTHONPATH=ROOT)
    run = subprocess.run([sys.executable, "bench/serve.py", "--model", "tiny", "--clients", "2", "--seconds", "1",
                          "--warmup", "0.5", "--rounds", "1", "--max-batch", "4", "--threads", "1"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()]
    serve = {r["setting"]: r for r in lines if r["kind"] == "serve"}
    assert set(serve) == {"batch1", "batched"}
    for r in serve.values():
        assert r["errors"] == 0 and r["requests"] > 0 and r["p50_ms"] <= r["p99_ms"]
        assert r["requests_per_s"] == r["requests"] / r["seconds"]
    assert serve["batch1"]["mean_batch"] == 1  # the server really ran one input per forward pass
    assert 1 <= serve["batched"]["mean_batch"] <= 4
    (gain,) = [r for r in lines if r["kind"] == "serve_gain"]
    assert gain["requests_per_s_ratio"] == serve["batched"]["requests_per_s"] / serve["batch1"]["requests_per_s"]
    assert run.stdout.count("BENCH serve ") == 2
    (alone,) = [r for r in lines if r["kind"] == "serve_model_alone"]
    assert alone["clips"] == 4 and alone["batch_gain"] == alone["one_by_one_s"] / alone["one_batch_s"]
