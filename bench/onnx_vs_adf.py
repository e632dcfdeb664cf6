"""ONNX Runtime against adf on the CPU, in the same run, on the same clips.

    python -m bench.onnx_vs_adf                                   # w2v_small, 8 clips of 2-12 s
    python -m bench.onnx_vs_adf --models tiny --clips 4 --repeats 1   # smoke test

For each model (random weights): `adf export --onnx`'s graph (adf.onnx_export:
input policy inside, padded batches with `lengths`) is written and loaded in
ONNX Runtime (CPU provider, all graph optimisations, as many intra-op
threads as torch uses). Then on the same clips, batch 1 and batched
(length-sorted, <= 5 % padding, adf.inference.plan_batches):
- `adf fp32`: SSLClassifier as `adf detect --precision fp32` runs it;
- `adf bf16`: the pure-bf16 path of `--precision auto` on CPUs that compute
  bf16 natively (skipped elsewhere unless --bf16);
- `onnxruntime fp32`: the exported graph.
One `BENCH onnx` line per run: audio seconds per wall second (`x_realtime`)
and per process-CPU second (`x_realtime_cpu`, ONNX Runtime's threads are in
this process), and the ratio against adf fp32 at the same batching
(`vs_adf_fp32`, wall; `vs_adf_fp32_cpu`). `BENCH onnx_agree`: max |logit
difference| of ONNX Runtime against adf fp32 (each clip alone, and batched).
`BENCH onnx_export`: export seconds and file size.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from adf.precision import cpu_native_bf16
from bench.common import SR, clip_lengths, clips, machine, report, timed


def batches_of(lengths, batch_size):
    from adf.inference import plan_batches

    return [[i] for i in range(len(lengths))] if batch_size == 1 else plan_batches(lengths, batch_size)


def run_adf(model, wavs, batches):
    """[fake, real] logits per clip from adf's model, batch by batch (padding masked)."""
    out = [None] * len(wavs)
    with torch.inference_mode():
        for idx in batches:
            batch = torch.nn.utils.rnn.pad_sequence([wavs[i] for i in idx], batch_first=True)
            lengths = torch.tensor([wavs[i].shape[0] for i in idx])
            logits = model(batch, lengths if len(idx) > 1 else None).float()
            for i, row in zip(idx, logits):
                out[i] = row.numpy()
    return np.stack(out)


def run_ort(detector, wavs, batches):
    out = [None] * len(wavs)
    for idx in batches:
        logits, _ = detector.score_waveforms([wavs[i] for i in idx])
        for i, row in zip(idx, logits):
            out[i] = row
    return np.stack(out)


def bench_model(name, args):
    from adf.models.classifier import build_classifier
    from adf.onnx_export import OnnxDetector, export_onnx

    torch.manual_seed(0)
    model = build_classifier(name).eval()
    lengths = clip_lengths(args.clips)
    wavs = clips(lengths)  # layer-normed already: the graph's own norm leaves them as they are
    numpy_wavs = [w.numpy() for w in wavs]
    audio = sum(lengths) / SR
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"{name}.onnx")
        start = time.perf_counter()
        check = export_onnx(model, path)
        seconds = time.perf_counter() - start
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        report("onnx_export", model=name, seconds=seconds, mb=size / 2**20, verify_max_abs_logit=check)
        detector = OnnxDetector(path, threads=args.threads)

        runs = {}
        for batch_size in (1, args.batch_size):
            batches = batches_of(lengths, batch_size)
            label = "b1" if batch_size == 1 else f"b{batch_size}"
            runs[("adf fp32", label)] = (lambda b=batches: run_adf(model, wavs, b))
            runs[("onnxruntime fp32", label)] = (lambda b=batches: run_ort(detector, numpy_wavs, b))
        bf16 = None
        if args.bf16 or cpu_native_bf16():
            import copy

            bf16 = copy.deepcopy(model).set_precision("bf16")
            for batch_size in (1, args.batch_size):
                batches = batches_of(lengths, batch_size)
                label = "b1" if batch_size == 1 else f"b{batch_size}"
                runs[("adf bf16", label)] = (lambda b=batches: run_adf(bf16, wavs, b))
        times = {key: timed(fn, args.repeats) for key, fn in runs.items()}
        for (kind, label), (wall, cpu) in times.items():
            base_wall, base_cpu = times[("adf fp32", label)]
            report("onnx", model=name, run=kind.replace(" ", "_"), batch=label, clips=len(wavs),
                   audio_s=audio, x_realtime=audio / wall, x_realtime_cpu=audio / cpu,
                   vs_adf_fp32=base_wall / wall, vs_adf_fp32_cpu=base_cpu / cpu)
        alone = np.abs(run_ort(detector, numpy_wavs, batches_of(lengths, 1))
                       - run_adf(model, wavs, batches_of(lengths, 1))).max()
        batched = np.abs(run_ort(detector, numpy_wavs, batches_of(lengths, args.batch_size))
                         - run_adf(model, wavs, batches_of(lengths, 1))).max()
        report("onnx_agree", model=name, max_abs_logit_alone=float(alone), max_abs_logit_batched=float(batched))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["w2v_small"])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch and ONNX Runtime threads "
                        "(default: torch's)")
    parser.add_argument("--bf16", action="store_true", help="also run adf bf16 on CPUs without native bf16")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    report("machine", **machine())
    for name in args.models:
        bench_model(name, args)


if __name__ == "__main__":
    main()
