"""Shared pieces of the benchmarks: model FLOPs, the machine's GEMM peak, test
clips, timing and the one-line result format."""
from __future__ import annotations

import json
import os
import platform
import statistics
import time

import torch

SR = 16000


def model_flops(config, n_samples):
    """Forward FLOPs (2 per multiply-add) of an SSLClassifier on one unpadded
    utterance of `n_samples` at 16 kHz: CNN, feature projection, positional
    convolution, the transformer layers (projections, FFN, both attention
    products) and the head. Norms and activations are not counted."""
    flops, t, c_in = 0, n_samples, 1
    for c_out, kernel, stride in config["extractor_conv_layer_config"]:
        t = (t - kernel) // stride + 1
        flops += 2 * t * c_out * c_in * kernel
        c_in = c_out
    d, ffn = config["encoder_embed_dim"], config["encoder_ff_interm_features"]
    flops += 2 * t * c_in * d  # feature projection
    k = config["encoder_pos_conv_kernel"]  # padded by k // 2: an even kernel makes one extra frame
    flops += 2 * (t + 2 * (k // 2) - k + 1) * d * (d // config["encoder_pos_conv_groups"]) * k
    per_layer = 2 * t * (4 * d * d + 2 * d * ffn) + 2 * 2 * t * t * d
    return flops + config["encoder_num_layers"] * per_layer + 2 * d * 2


def gemm_peak(dtype, device="cpu", n=2048, seconds=2.0, clock=time.perf_counter):
    """Best FLOP/s of an n x n x n matmul in `dtype` over about `seconds`.

    With `clock=time.process_time` (CPU only): FLOP per CPU second of this
    process, which other jobs on a shared machine disturb far less than wall
    time; with one torch thread it is one core's limit."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    a @ b
    sync()
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = clock()
        for _ in range(4):
            a @ b
        sync()
        best = min(best, (clock() - start) / 4)
    return 2 * n**3 / best


def clip_lengths(count, low=2.0, high=12.0, seed=0):
    """`count` clip lengths in samples, spread evenly over [low, high] s with jitter, shuffled."""
    g = torch.Generator().manual_seed(seed)
    step = (high - low) / max(count - 1, 1)
    secs = [min(high, low + k * step + float(torch.rand(1, generator=g)) * step * 0.5) for k in range(count)]
    order = torch.randperm(count, generator=g).tolist()
    return [int(secs[i] * SR) for i in order]


def clips(lengths, seed=0):
    """Layer-normed random waveforms of the given lengths (what adf.audio would feed the model)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        w = torch.randn(n, generator=g)
        out.append((w - w.mean()) / w.std())
    return out


def timed(fn, repeats, sync=lambda: None, warmup=None):
    """(median wall s, median process CPU s) of `repeats` calls of fn, after one
    call of `warmup` (default: fn)."""
    (warmup or fn)()
    sync()
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        sync()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


# The recipes' optimiser (recipes/posttrain/hparams: AdamW, wd 0.01, eps 1e-6, fused).
ADAMW = dict(weight_decay=0.01, eps=1e-6)


def adamw(params, lr=1e-6, fused=True):
    """The recipes' AdamW over `params`; `fused=False` gives torch's default implementation."""
    return torch.optim.AdamW(params, lr=lr, fused=fused or None, **ADAMW)


def bench_optimizer_step(name, model, repeats=3, sync=lambda: None):
    """Report (`BENCH optimizer`) the median wall seconds of one AdamW step over
    `model`'s trainable parameters (random gradients): torch's default
    implementation (a loop over tensors on the CPU, `foreach` on CUDA) and the
    fused one the recipes use, one after the other on the same gradients."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = 1e-3 * torch.randn_like(p)
    seconds = {}
    for kind in ("default", "fused"):
        optimizer = adamw(params, fused=kind == "fused")
        seconds[kind] = timed(optimizer.step, repeats, sync=sync)[0]
        del optimizer  # its moments: two copies of the weights
    for p in params:
        p.grad = None
    report("optimizer", model=name, optimizer="adamw", default_s=seconds["default"], fused_s=seconds["fused"],
           speedup=seconds["default"] / seconds["fused"])


def machine():
    """A short description of where the numbers come from."""
    desc = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "load_avg_1m": round(os.getloadavg()[0], 2)}
    try:
        with open("/proc/cpuinfo") as fh:
            desc["cpu"] = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        desc["gpu"] = torch.cuda.get_device_name()
    return desc


def report(kind, out_dir=None, **fields):
    """Print one summary line `BENCH <kind> key=value ...`, and append it as JSON to
    `<out_dir or $OUT>/bench.jsonl` when either is set."""
    text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
    print(f"BENCH {kind} {text}", flush=True)
    out_dir = out_dir or os.environ.get("OUT")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "bench.jsonl"), "a") as fh:
            fh.write(json.dumps({"kind": kind, **fields}) + "\n")
