"""Single-GPU measurements (run through bench/gpu.sh, which bounds the time).

Inference: mms_300m and xlsr_1b, bf16 weights (set_precision), batches of up
to --batch-size (64) clips of 2-12 s (length-sorted, <= 5 % padding), throughput in
audio seconds per second, model-FLOP utilisation against the card's measured
bf16 GEMM peak, peak memory. Checks: bf16 logits close to fp32 on one batch,
batching does not change scores. Training: a step (bf16 autocast over fp32
weights, fused AdamW, --train-seconds of audio per batch) for mms_300m and
xlsr_1b: audio seconds and steps per second, MFU (3x forward FLOPs), peak memory;
and an AdamW step alone, torch's default (foreach) against the fused one.
Each is measured eager and with `compile_layers` (torch.compile of each
transformer layer; compilation time reported apart); the eager ones are also
timed with adf.models.batched_convs all channels-last ("nhwc") and with
torchaudio's convolution modules (the earlier default), beside the defaults. One batch / step of
each variant is profiled (`BENCH profile`: device busy share and time by kind
of kernel, see bench/profiling.py; full tables in $OUT/profile_*.txt).
`--dry` runs the same code on the CPU with the tiny model in seconds.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from contextlib import nullcontext

import torch


from bench.common import (SR, adamw, bench_optimizer_step, clip_lengths, clips, gemm_peak, machine,
                          model_flops, report)
from adf.models.conv_paths import Frontend
from adf.precision import PRECISIONS, resolve

FAILURES = []


def check(name, ok, **fields):
    report("check", what=name, ok=bool(ok), **fields)
    if not ok:
        FAILURES.append(name)


class Clock:
    """Wall-time budget: measurements that would start past it are skipped (and say so)."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_memory(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device):
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")


def build(name, device):
    from adf.models.classifier import build_classifier

    torch.manual_seed(0)
    with torch.device(device):
        return build_classifier(name)


def host_batch(wavs, idx, device):
    """Clips `idx` zero-padded into one batch + their lengths, on the host (page-locked for CUDA)."""
    batch = torch.nn.utils.rnn.pad_sequence([wavs[i] for i in idx], batch_first=True)
    lengths = torch.tensor([wavs[i].shape[0] for i in idx])
    return (batch.pin_memory(), lengths.pin_memory()) if device.type == "cuda" else (batch, lengths)


def pad(wavs, idx, device):
    batch, lengths = host_batch(wavs, idx, device)
    return batch.to(device), lengths.to(device)


def timed_runs(fn, repeats, device):
    """Median wall seconds of `repeats` calls of fn (after the caller's warm-up)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def start_variant(variant, model, fn, args, device, clock, what):
    """Get `model` ready for a measurement -> (go ahead?, compilation seconds or None).

    "compiled": compile_layers, then one call of fn (which compiles), unless too
    little of the budget is left or compiling fails (both reported as skipped)."""
    reset_memory(device)
    if variant != "compiled":
        return True, None
    if clock.left() < args.compile_reserve:
        report("skipped", what=what, reason="time budget")
        return False, None
    model.compile_layers(mode=args.compile_mode)
    start = time.perf_counter()
    try:
        fn()
        sync(device)
    except Exception as err:  # e.g. no C compiler for Triton's launcher: the eager numbers still stand
        report("skipped", what=what, reason=f"compilation failed: {type(err).__name__}: {str(err)[:300]}")
        return False, None
    return True, time.perf_counter() - start


def profile(fn, device, args, what):
    from bench.profiling import profile_call

    if not args.profile:
        return
    try:
        summary = profile_call(fn, device.type, os.environ.get("OUT"), tag="profile_" + what.replace(" ", "_"))
    except Exception as err:  # a profiler problem must not cost the measurements after it
        return report("skipped", what=f"profile {what}", reason=f"{type(err).__name__}: {str(err)[:300]}")
    report("profile", what=what, **summary)


def infer(name, variant, args, device, peak, clock):
    lowp = args.precision
    from adf.inference import plan_batches

    if clock.left() < 30:
        return report("skipped", what=f"infer {name}", reason="time budget")
    model = build(name, device).eval()
    lengths = clip_lengths(args.clips, seed=0)
    wavs = clips(lengths, seed=0)
    batches = plan_batches(lengths, args.batch_size)
    flops = sum(model_flops(model.config, n) for n in lengths)
    audio = sum(lengths) / SR
    with torch.inference_mode():
        first = pad(wavs, batches[0], device)
        ref = model(*first).float()
        use_conv_path(model, "torchaudio")
        plain = model(*first).float()
        use_conv_path(model, "default")
        # (loose: cuDNN's fp32 convolutions may run in TF32, torch's default for them)
        check(f"{name} batched convs vs torchaudio's (fp32)",
              torch.allclose(ref, plain, atol=0.01 * plain.abs().max().item()),
              max_dlogit=(ref - plain).abs().max().item(), max_logit=plain.abs().max().item())
    # outside inference mode, as load_model does: the weights keep version counters,
    # so adf.models.batched_convs can cache the positional convolution's weight
    model.set_precision(lowp)
    with torch.inference_mode():
        got = model(*first).float()
        dprob = (torch.softmax(got.double(), -1)[:, 1] - torch.softmax(ref.double(), -1)[:, 1]).abs()
        check(f"{name} {lowp} vs fp32", dprob.median().item() <= 0.01, median_dprob=dprob.median().item(),
              max_dlogit=(got - ref).abs().max().item())
        alone = torch.cat([model(wavs[i][None].to(device)).float() for i in batches[0]])
        check(f"{name} padding invariance ({lowp})", torch.allclose(alone, got, atol=0.05),
              max_dlogit=(alone - got).abs().max().item())

        # Padded and page-locked beforehand, copied asynchronously: what adf.inference's
        # DataLoader workers (pin_memory) hand the model on CUDA.
        host = [host_batch(wavs, idx, device) for idx in batches]

        def run():
            for wav, lens in host:
                model(wav.to(device, non_blocking=True), lens.to(device, non_blocking=True))

        middle = pad(wavs, batches[len(batches) // 2], device)
        for path in conv_paths(args, variant):
            use_conv_path(model, path)
            ready, compile_s = start_variant(variant, model, run, args, device, clock, f"infer {name} {variant}")
            if not ready:
                continue
            run()
            sync(device)
            wall = timed_runs(run, args.repeats, device)
            report("infer", model=name, precision=lowp, variant=variant, convs=path,
                   batch=args.batch_size, mean_batch=len(lengths) / len(batches), clips=len(lengths),
                   audio_s=audio, wall_s=wall, x_realtime=audio / wall, mfu=flops / wall / peak,
                   peak_mem_gib=peak_gib(device), compile_s=compile_s)
            profile(lambda: model(*middle), device, args, f"infer {name} {variant} {path}")
        use_conv_path(model, "default")


def use_conv_path(model, path):
    """"default": the model's own settings (kept as `_bench_default` the first
    time); "adf_<impl>": adf.models.batched_convs with that implementation
    in the CNN and the positional convolution;
    "torchaudio": torchaudio's modules (cuDNN), the earlier default on GPUs."""
    if not hasattr(model, "_bench_default"):
        model._bench_default = model.conv_paths
    paths = model._bench_default
    if path == "torchaudio":
        paths = dataclasses.replace(paths, frontend=Frontend.REFERENCE)
    elif path.startswith("adf_"):
        paths = dataclasses.replace(paths, cnn_impl=path[len("adf_"):], pos_conv_impl=path[len("adf_"):])
    model.set_conv_paths(paths)


def conv_paths(args, variant):
    if args.compare_convs and variant == "eager":
        # the model's defaults (CNN nhwc, positional "auto"), all-nhwc, and torchaudio's modules
        return ["default", "adf_nhwc", "torchaudio"]
    return ["default"]


def train(name, variant, args, device, peak, clock):
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(1)
    # Training crops to 10-13 s; a dynamic batch holds about --train-seconds of audio.
    lengths, total = [], 0
    while total + 13 * SR <= args.train_seconds * SR or not lengths:
        lengths.append(int((10 + 3 * float(torch.rand(1, generator=g))) * SR))
        total += lengths[-1]
    wav, lens = pad(clips(lengths, seed=1), list(range(len(lengths))), device)
    target = torch.arange(len(lengths), device=device) % 2
    if clock.left() < 60:
        return report("skipped", what=f"train {name} {variant}", reason="time budget")
    model = build(name, device).train()
    if variant == "eager":
        bench_optimizer_step(name, model, sync=lambda: sync(device))
    optimizer = adamw(model.parameters())
    flops = 3 * sum(model_flops(model.config, n) for n in lengths)
    amp = nullcontext() if args.precision == "fp32" else torch.autocast(device.type, dtype=torch.bfloat16)

    def step():
        with amp:
            logits = model(wav, lens)
        loss = F.cross_entropy(logits.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
        optimizer.step()
        return loss

    for path in conv_paths(args, variant):
        use_conv_path(model, path)
        what = f"train {name} {variant} {path}"
        ready, compile_s = start_variant(variant, model, step, args, device, clock, what)
        if not ready:
            continue
        check(f"{name} training loss finite ({variant}, {path})", torch.isfinite(step()).item())
        sync(device)
        wall = timed_runs(step, args.steps, device)
        report("train", model=name, precision=f"{args.precision}-autocast" if args.precision != "fp32" else "fp32",
               variant=variant, convs=path,
               clips=len(lengths), audio_s=total / SR, step_s=wall, steps_per_s=1 / wall,
               x_realtime=total / SR / wall, mfu=flops / wall / peak, peak_mem_gib=peak_gib(device),
               compile_s=compile_s)
        profile(step, device, args, what)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dry", action="store_true", help="CPU, tiny model, seconds: checks the script itself")
    parser.add_argument("--models", nargs="*", default=None, help="inference models (none: skip inference)")
    parser.add_argument("--train-models", nargs="*", default=None, help="training models (none: skip training)")
    parser.add_argument("--clips", type=int, default=None, help="inference clips (default 512; --dry 8)")
    parser.add_argument("--batch-size", type=int, default=64, help="inference clips per batch, at most")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--train-seconds", type=float, default=None,
                        help="audio per training batch (default: 400 s on a GPU of >= 120 GiB, where xlsr_1b "
                             "needs 82 GiB; else 200 s; the recipes' hparams use 100 s)")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds; later measurements are skipped")
    parser.add_argument("--no-compare-convs", dest="compare_convs", action="store_false",
                        help="skip the eager variants with all-nhwc convolutions and with torchaudio's modules")
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="skip the compile_layers (torch.compile) variants")
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode for the compiled variants")
    parser.add_argument("--compile-reserve", type=float, default=90.0,
                        help="seconds of budget a compiled variant needs to start")
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip the torch.profiler summaries (one batch / step per variant)")
    args = parser.parse_args(argv)
    if args.dry:
        device = torch.device("cpu")
        args.models = ["tiny"] if args.models is None else args.models
        args.train_models = ["tiny"] if args.train_models is None else args.train_models
        args.clips = args.clips or 8
        args.repeats, args.steps, args.train_seconds = 1, 1, min(args.train_seconds or 30.0, 30.0)
        args.compile_reserve = 0.0
    else:
        if not torch.cuda.is_available():
            print("bench/gpu.py: no CUDA device (use --dry to test the script on the CPU)", file=sys.stderr)
            return 2
        device = torch.device("cuda")
        args.models = ["mms_300m", "xlsr_1b"] if args.models is None else args.models
        args.train_models = ["mms_300m", "xlsr_1b"] if args.train_models is None else args.train_models
        args.clips = args.clips or 512  # dense enough in length for full batches at <= 5 % padding
        if args.train_seconds is None:
            big = torch.cuda.get_device_properties(0).total_memory >= 120 * 2**30
            args.train_seconds = 400.0 if big else 200.0
    # bf16 where the device computes it natively; a CPU without it (--dry on an
    # AVX2 machine) runs the script in fp32, and MFU is against the fp32 peak.
    args.precision = resolve("auto", device).precision
    clock = Clock(args.budget)
    report("machine", **machine())
    peak = gemm_peak(PRECISIONS[args.precision], device, n=256 if args.dry else 8192,
                     seconds=0.5 if args.dry else 3.0)
    report("peak", device=device.type, precision=args.precision, tflops=peak / 1e12)
    # Every eager measurement first, then the compiled ones (whose compilation
    # takes most of the time), so a tight budget skips only compiled variants.
    for variant in ("eager", "compiled") if args.compile else ("eager",):
        for name in args.models:
            infer(name, variant, args, device, peak, clock)
            reset_memory(device)  # the model went with the call's locals
        for name in args.train_models:
            train(name, variant, args, device, peak, clock)
            reset_memory(device)
    report("done", failures=len(FAILURES), seconds_left=clock.left())
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
