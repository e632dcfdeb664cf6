"""Benchmark: header extraction speed of `adf prepare` (adf.data.audio_info.probe_files).

Generates N small WAV files (default 20,000; 0.05-0.3 s, mixed rates and
channel counts) in a temporary folder and times reading their headers
serially, with --jobs worker processes, with the cache being written, and
again from that cache: one `BENCH headers` line per mode (files/s and the
speed ratio against the serial run).

    python -m bench.prepare_headers [--files 20000] [--jobs 2]
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time

import numpy as np
import soundfile as sf

from adf.data.audio_info import probe_files
from bench.common import report


def make_files(folder, n):
    """n WAV files cycling through 32 encoded variants (written once, then copied as bytes)."""
    rng = np.random.default_rng(0)
    variants = []
    for k in range(32):
        sr = (8000, 16000, 22050, 44100)[k % 4]
        data = (0.1 * rng.standard_normal((int(sr * rng.uniform(0.05, 0.3)), 1 + k % 2))).astype(np.float32)
        buf = io.BytesIO()
        sf.write(buf, data, sr, format="WAV", subtype="PCM_16")
        variants.append(buf.getvalue())
    paths = []
    for i in range(n):
        path = os.path.join(folder, f"{i // 1000:02d}", f"{i:06d}.wav")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(variants[i % len(variants)])
        paths.append(path)
    return paths


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths, t_gen = timed(lambda: make_files(tmp, args.files))
        cache = os.path.join(tmp, "out.csv.cache.json")
        probe_files(paths[:2000], jobs=1)  # warm the page cache for both modes alike
        serial, t_serial = timed(lambda: probe_files(paths, jobs=1))
        parallel, t_par = timed(lambda: probe_files(paths, jobs=args.jobs))
        first, t_first = timed(lambda: probe_files(paths, jobs=args.jobs, cache_path=cache))
        cached, t_cache = timed(lambda: probe_files(paths, jobs=args.jobs, cache_path=cache))
        assert serial == parallel == first == cached, "serial, parallel and cached results differ"
    for mode, jobs, t in [("serial", 1, t_serial), ("parallel", args.jobs, t_par),
                          ("parallel_writing_cache", args.jobs, t_first), ("from_cache", args.jobs, t_cache)]:
        report("headers", mode=mode, jobs=jobs, files=len(paths), seconds=t, files_per_s=len(paths) / t,
               vs_serial=t_serial / t, cpus=os.cpu_count(), generate_s=t_gen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
