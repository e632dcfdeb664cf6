"""Where the time of one forward pass or training step goes: a torch.profiler
run summarised by kind of work, for the benchmarks' `BENCH profile` lines.

On CUDA the unit is the GPU kernel (its duration on the device); on the CPU,
the aten operator's self time. Each is put in one category by its name
(`category`), so a profile reads as "GEMMs 55 %, norms 12 %, ..." and the
device's busy share says whether the host keeps the device fed: a busy share
well under 1 means launch and Python overhead, not the kernels, set the pace.
"""
from __future__ import annotations

import os
import re
import time
from collections import Counter

import torch

# First match wins: convolutions before GEMMs (cuDNN's implicit-GEMM kernels
# carry both words), fused Triton kernels before the element-wise patterns.
_CATEGORIES = [
    ("communication", r"nccl|all_?reduce|all_?gather|reduce_?scatter"),
    ("attention", r"fmha|flash|attention|efficient_attention|scaled_dot_product|softmax"),
    ("conv", r"conv|fprop|dgrad|wgrad|cudnn|winograd|im2col|col2im"),
    ("gemm", r"gemm|matmul|nvjet|cutlass|xmma|cublas|\baten::(mm|bmm|addmm|baddbmm|linear)\b"),
    ("triton_fused", r"^triton_|cpp_fused"),
    ("norm", r"norm|moments|welford"),
    ("optimizer", r"multi_tensor|adam|_foreach"),
    ("copy_cast", r"copy|memcpy|memset|cast|\bto\b|_to_copy|contiguous|cat|pad|index"),
    ("elementwise", r"elementwise|gelu|add|mul|div|sub|where|fill|masked|reduce|sum|mean|exp|clamp"),
]
_PATTERNS = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in _CATEGORIES]


def category(name):
    """The kind of work a kernel or operator name stands for ('other' when none fits)."""
    for label, pattern in _PATTERNS:
        if pattern.search(name):
            return label
    return "other"


def _units(prof, device_type):
    """(name, microseconds) of every device kernel (CUDA) or operator self time (CPU)."""
    if device_type == "cuda":
        return [(e.name, e.time_range.elapsed_us()) for e in prof.events()
                if e.device_type == torch.autograd.DeviceType.CUDA]
    return [(e.key, e.self_cpu_time_total) for e in prof.key_averages()  # + Inductor's C++ kernels
            if (e.key.startswith("aten::") or "cpp_fused" in e.key) and e.self_cpu_time_total > 0]


def profile_call(fn, device_type, out_dir=None, tag="profile"):
    """Run `fn` once under torch.profiler; returns a summary dict: wall_ms, busy_share
    (device time / wall time), the share of each category, the top kernels. With
    `out_dir`, also writes the profiler's own table to `<out_dir>/<tag>.txt`."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device_type == "cuda" else [])
    sync = torch.cuda.synchronize if device_type == "cuda" else (lambda: None)
    sync()
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        fn()
        sync()
        wall_us = (time.perf_counter() - start) * 1e6
    units = _units(prof, device_type)
    busy = sum(us for _, us in units)
    shares = Counter()
    for name, us in units:
        shares[category(name)] += us / busy if busy else 0.0
    top = Counter()
    for name, us in units:
        top[name[:60]] += us
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        sort = "self_device_time_total" if device_type == "cuda" else "self_cpu_time_total"
        with open(os.path.join(out_dir, f"{tag}.txt"), "w") as fh:
            fh.write(prof.key_averages().table(sort_by=sort, row_limit=40))
    return {"wall_ms": wall_us / 1e3, "busy_share": busy / wall_us, "kernels": len(units),
            **{f"share_{k}": round(v, 4) for k, v in sorted(shares.items())},
            "top": ",".join(f"{name.replace(' ', '')}={us / busy:.3f}" for name, us in top.most_common(5))}
