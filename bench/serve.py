"""Throughput and latency of `adf serve` under concurrent clients, with and without
cross-request batching, side by side in one run.

    python -m bench.serve                                  # w2v_small, 16 clients, 2 x 20 s per setting
    python -m bench.serve --model tiny --clients 4 --seconds 2 --rounds 1   # smoke test

A checkpoint of `--model` with random weights (or `--ckpt`) is served by
`adf serve` in a subprocess on 127.0.0.1 (a free port) twice: with `--max-batch
1` (every request its own forward pass) and with `--max-batch B` (requests of
concurrent clients batched together). The settings alternate for `--rounds`
rounds, so drifting load on a shared machine touches both alike. In each round
`--clients` clients post WAV clips (`--clip-seconds`, 16 kHz) back to back for
`--seconds`, measured once every client has had an answer and `--warmup`
seconds more have passed (the queue is then in its steady state). Each setting prints one `BENCH serve` line:
requests/s, audio seconds scored per wall second, p50/p99 latency, errors (must
be 0) and the mean batch size the server ran (from /healthz); then `BENCH
serve_gain` gives the requests/s ratio batched / batch 1. `BENCH
serve_model_alone` first times the model alone (no HTTP) on `--max-batch`
clips one at a time and in one batch: the most batching can give here. On a
shared machine wall times move with the other load; the CPU-time figures
(`server_cpu_ms_per_request`, `cpu_per_request_ratio`, `batch_gain_cpu`) much less.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from bench.common import SR, machine, report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_checkpoint(model, path, seed=0):
    import torch

    from adf.checkpoints import save_checkpoint
    from adf.models.classifier import build_classifier

    torch.manual_seed(seed)
    save_checkpoint(build_classifier(model), path)
    return path


def wav_clips(count, low, high, seed=0):
    """`count` 16-bit WAV files (bytes) of noise, lengths spread over [low, high] seconds."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        seconds = low + (high - low) * k / max(count - 1, 1)
        buf = io.BytesIO()
        sf.write(buf, (0.1 * rng.standard_normal(int(seconds * SR))).astype("float32"), SR, format="WAV")
        out.append((buf.getvalue(), seconds))
    return out


class Server:
    """`adf serve` in a subprocess on 127.0.0.1, port chosen by the system."""

    def __init__(self, ckpt, max_batch, max_wait_ms, threads, precision, device):
        cmd = [sys.executable, "-m", "adf", "serve", "--ckpt", ckpt, "--host", "127.0.0.1", "--port", "0",
               "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms), "--max-queue", "1024",
               "--precision", precision, "--log-level", "warning"]
        if threads:
            cmd += ["--threads", str(threads)]
        if device:
            cmd += ["--device", device]
        env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.proc.stdout], daemon=True).start()
        try:
            first = lines.get(timeout=300)
        except queue.Empty:
            self.stop()
            raise RuntimeError("adf serve did not start within 300 s") from None
        if "listening on " not in first:
            self.stop()
            raise RuntimeError(f"adf serve did not start: {first}")
        self.url = first.split("listening on ")[1].split()[0]

    def cpu_seconds(self):
        """CPU time (user + system, all threads) the server process has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def load(url, clips, clients, seconds, warmup, cpu=lambda: 0.0):
    """Latencies (s) of the requests that `clients` concurrent clients finished in a
    window of `seconds`, the errors (at any time) and the audio seconds scored in
    the window, and the server's CPU seconds in the window (`cpu()`). The window
    opens `warmup` seconds after every client has had an answer (the queue is
    then in its steady state); requests still open when it closes are abandoned."""
    import httpx

    latencies, errors, audio = [], [], 0.0
    window = [float("inf"), float("inf")]
    answered, everyone = set(), asyncio.Event()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one_client(k):
            nonlocal audio
            i = k
            while True:
                body, clip_s = clips[i % len(clips)]
                i += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/detect", content=body)
                    problem = None if r.status_code == 200 else f"{r.status_code} {r.text[:200]}"
                except httpx.HTTPError as err:
                    problem = f"{type(err).__name__}: {err}"
                t1 = time.perf_counter()
                if problem:
                    errors.append(problem)
                elif window[0] <= t1 <= window[1]:
                    latencies.append(t1 - t0)
                    audio += clip_s
                answered.add(k)
                if len(answered) == clients:
                    everyone.set()

        tasks = [asyncio.ensure_future(one_client(k)) for k in range(clients)]
        await everyone.wait()
        await asyncio.sleep(warmup)
        cpu0 = cpu()
        window[0] = time.perf_counter()
        window[1] = window[0] + seconds
        await asyncio.sleep(seconds)
        cpu_used = cpu() - cpu0
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return latencies, errors, audio, cpu_used


def model_alone(ckpt, clips, max_batch, precision, device, threads):
    """(wall s, CPU s) of the adapter scoring `max_batch` clips one at a time, and
    the same in one batch (no HTTP): how much batching can give here at most."""
    import soundfile as sf
    import torch

    from adf.serve.adapter import ModelAdapter
    from bench.common import timed

    if threads:
        torch.set_num_threads(threads)
    adapter = ModelAdapter.load(ckpt, device=device or "cpu", precision=precision)
    waves = [torch.from_numpy(sf.read(io.BytesIO(body), dtype="float32")[0]) for body, _ in clips[:max_batch]]
    one = timed(lambda: [adapter.score_waveforms([w]) for w in waves], 2)
    together = timed(lambda: adapter.score_waveforms(waves), 2)
    return one, together


def percentile(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="w2v_small", help="architecture with random weights (default %(default)s)")
    parser.add_argument("--ckpt", default=None, help="serve this checkpoint instead of random weights")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default %(default)d)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per round and setting")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each measurement")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two settings")
    parser.add_argument("--max-batch", type=int, default=8, help="the batched setting's --max-batch")
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--clip-seconds", type=float, nargs=2, default=[2.0, 2.0], metavar=("MIN", "MAX"),
                        help="clip lengths, spread over [MIN, MAX] (default: all 2 s, so padding does not "
                             "blur the comparison)")
    parser.add_argument("--threads", type=int, default=None, help="the server's torch threads")
    parser.add_argument("--precision", default="fp32", help="the server's --precision (default %(default)s)")
    parser.add_argument("--device", default=None, help="the server's --device")
    args = parser.parse_args()
    if args.clients < 1 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--clients, --seconds and --rounds must be positive")

    report("machine", **machine())
    clips = wav_clips(max(8, args.clients), *args.clip_seconds)
    settings = {"batch1": 1, "batched": args.max_batch}
    totals = {name: {"lat": [], "errors": [], "audio": 0.0, "cpu": 0.0, "seconds": 0.0, "batches": 0, "inputs": 0}
              for name in settings}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.ckpt or make_checkpoint(args.model, os.path.join(tmp, f"{args.model}.safetensors"))
        one, together = model_alone(ckpt, clips, args.max_batch, args.precision, args.device, args.threads)
        report("serve_model_alone", model=args.ckpt or args.model, clips=args.max_batch, one_by_one_s=one[0],
               one_batch_s=together[0], batch_gain=one[0] / together[0], batch_gain_cpu=one[1] / together[1])
        for _ in range(args.rounds):
            for name, max_batch in settings.items():
                server = Server(ckpt, max_batch, args.max_wait_ms, args.threads, args.precision, args.device)
                try:
                    import httpx

                    before = httpx.get(server.url + "/healthz").json()
                    lat, errors, audio, cpu = asyncio.run(load(server.url, clips, args.clients, args.seconds,
                                                               args.warmup, server.cpu_seconds))
                    after = httpx.get(server.url + "/healthz").json()
                finally:
                    server.stop()
                t = totals[name]
                t["lat"] += lat
                t["errors"] += errors
                t["audio"] += audio
                t["cpu"] += cpu
                t["seconds"] += args.seconds
                # batches over the whole run, warm-up included: the server's batch sizes
                t["batches"] += after["batches"] - before["batches"]
                t["inputs"] += after["inputs_scored"] - before["inputs_scored"]
    rps = {}
    for name, t in totals.items():
        rps[name] = len(t["lat"]) / t["seconds"]
        report("serve", setting=name, model=args.ckpt or args.model, clients=args.clients,
               max_batch=settings[name], max_wait_ms=args.max_wait_ms, requests=len(t["lat"]),
               errors=len(t["errors"]), requests_per_s=rps[name], audio_s_per_s=t["audio"] / t["seconds"],
               p50_ms=1000 * percentile(t["lat"], 50), p99_ms=1000 * percentile(t["lat"], 99),
               mean_batch=t["inputs"] / max(t["batches"], 1), seconds=t["seconds"],
               server_cpu_ms_per_request=1000 * t["cpu"] / max(len(t["lat"]), 1))
        for problem in sorted(set(t["errors"]))[:5]:
            print(f"error ({name}): {problem}", file=sys.stderr)
    gain = rps["batched"] / rps["batch1"] if rps["batch1"] else float("nan")
    cpu_per = {name: t["cpu"] / max(len(t["lat"]), 1) for name, t in totals.items()}
    report("serve_gain", model=args.ckpt or args.model, clients=args.clients, max_batch=args.max_batch,
           requests_per_s_ratio=gain, cpu_per_request_ratio=cpu_per["batch1"] / max(cpu_per["batched"], 1e-12),
           p50_ratio=statistics.median(totals["batch1"]["lat"] or [float("nan")])
           / statistics.median(totals["batched"]["lat"] or [float("nan")]))
    return 1 if any(t["errors"] for t in totals.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
