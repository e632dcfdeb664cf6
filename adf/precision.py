"""Numeric precision: the names adf accepts, their dtypes, and what `auto` picks.

bf16 is only fast where the hardware computes it: CUDA GPUs with bf16, and
CPUs with AMX or AVX-512 BF16. Elsewhere (an AVX2-only CPU) PyTorch emulates
it, and a bf16 matrix product runs tens of times slower than fp32. So `auto`
(the default of `adf detect`, the Python API and the recipes) chooses bf16 only
where it is native and fp32 otherwise, and an explicit bf16 on a CPU without it
warns once with the slowdown measured on this machine.

On the CPU the instruction flags are not the whole story: oneDNN's ISA can be
capped (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY), a virtual machine can hide
features, and PyTorch may lack kernels for what the CPU has. So where the flags
promise bf16, a short timed probe (one fp32 and one bf16 matrix product, well
under a second) decides, and its result is cached per machine and set-up in
`~/.cache/adf/precision.json` (`$XDG_CACHE_HOME` respected; `ADF_CACHE_DIR`
overrides the folder).

`int8` is an inference-only precision for the CPU: dynamic quantization of the
transformer layers' linear maps (int8 weights, activations quantized per
batch; `quantize_int8`).
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass

import torch

from adf.atomic import write_text_atomic

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
TRAINING_CHOICES = ("auto", *PRECISIONS)
INFERENCE_CHOICES = ("auto", *PRECISIONS, "int8")

# bf16 must compute at least this much faster than fp32 in the probe to be called native:
# native CPUs measure 3x (AVX-512 BF16) to 10x (AMX), emulating ones 0.02-0.05x.
NATIVE_SPEEDUP = 1.5
PROBE_SIZE = 256


@dataclass(frozen=True)
class Choice:
    """The precision to run in, and why (one phrase, for the run's summary line)."""

    precision: str
    reason: str

    @property
    def dtype(self):
        """The compute dtype of the backbone's weights (int8 keeps fp32 outside its linear maps)."""
        return PRECISIONS.get(self.precision, torch.float32)


def dtype_of(precision):
    """torch dtype of a precision name ("fp32", "bf16", "fp16")."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_bf16_flags():
    """Whether the CPU's instruction flags include bf16 arithmetic (AMX or AVX-512 BF16)."""
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_amx_tile_supported", lambda: False)()
                or getattr(cpu, "_is_avx512_bf16_supported", lambda: False)())


def _cache_path():
    from adf.user_cache import cache_dir

    return cache_dir("precision.json")


def _probe_key():
    """What the probe's result depends on: the CPU, PyTorch, its kernels' ISA caps, the threads."""
    return "|".join([_cpu_model(), torch.__version__, torch.backends.cpu.get_cpu_capability(),
                     os.environ.get("ONEDNN_MAX_CPU_ISA", ""), os.environ.get("ATEN_CPU_CAPABILITY", ""),
                     str(torch.get_num_threads())])


def _gemm_gflops(dtype, size=PROBE_SIZE, min_seconds=0.02):
    """GFLOP/s of a size^3 matrix product in `dtype` on the CPU (best of a few runs)."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    a @ b  # first call: kernel selection, allocation
    best, spent = float("inf"), 0.0
    while spent < min_seconds or best == float("inf"):
        start = time.perf_counter()
        a @ b
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    return 2 * size**3 / best / 1e9


_probe_memo = {}


def cpu_gemm_gflops():
    """{"fp32": GFLOP/s, "bf16": GFLOP/s} of this CPU as PyTorch runs it now (probed once, cached)."""
    key = _probe_key()
    if key in _probe_memo:
        return _probe_memo[key]
    path = _cache_path()
    try:
        with open(path, encoding="utf-8") as fh:
            cached = json.load(fh)
    except (OSError, ValueError):
        cached = {}
    entry = cached.get(key) if isinstance(cached, dict) else None
    if not (isinstance(entry, dict) and all(isinstance(entry.get(k), (int, float)) and entry[k] > 0
                                            for k in ("fp32", "bf16"))):
        entry = {"fp32": _gemm_gflops(torch.float32), "bf16": _gemm_gflops(torch.bfloat16)}
        cached = cached if isinstance(cached, dict) else {}
        cached[key] = entry
        try:  # a read-only home only costs the probe again next time
            write_text_atomic(json.dumps(cached, indent=1), path)
        except OSError:
            pass
    _probe_memo[key] = entry
    return entry


def cpu_native_bf16():
    """(native, detail): whether this CPU computes bf16 natively, and the evidence."""
    capability = torch.backends.cpu.get_cpu_capability()
    if not cpu_bf16_flags():
        return False, f"no bf16 instructions ({capability})"
    speed = cpu_gemm_gflops()
    ratio = speed["bf16"] / speed["fp32"]
    native = ratio >= NATIVE_SPEEDUP
    return native, f"{capability}, bf16 matrix products {ratio:.2g}x fp32"


_warned = set()


def _warn_once(message):
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message}", file=sys.stderr)


def resolve(requested, device, purpose="inference"):
    """The precision to run `purpose` ("inference" or "training") in on `device`.

    `requested` is "auto" or an explicit name; explicit names are kept (an
    emulated bf16 on the CPU warns once, with the measured slowdown), and
    combinations that cannot run raise ValueError with the reason.
    """
    choices = INFERENCE_CHOICES if purpose == "inference" else TRAINING_CHOICES
    if requested not in choices:
        raise ValueError(f"unknown precision {requested!r}; choose one of: {', '.join(choices)}")
    device = torch.device(device)
    if requested == "fp16" and device.type != "cuda":
        raise ValueError("fp16 needs a CUDA device; use --precision auto, bf16 or fp32 on the CPU")
    if requested == "int8" and device.type != "cpu":
        raise ValueError("int8 (dynamic quantization) runs on the CPU only; use --precision auto on GPUs")
    if requested != "auto":
        if requested == "bf16" and device.type == "cpu":
            native, detail = cpu_native_bf16()
            if not native:
                speed = cpu_gemm_gflops()
                _warn_once(f"this CPU has no native bf16 ({detail.split(', ')[0]}): a bf16 matrix product "
                           f"runs {speed['fp32'] / speed['bf16']:.0f}x slower than fp32 here "
                           f"({speed['bf16']:.1f} vs {speed['fp32']:.1f} GFLOP/s); running bf16 as asked "
                           "(--precision auto picks fp32 here)")
        return Choice(requested, "as asked")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return Choice("bf16", "auto: the GPU computes bf16 natively")
        return Choice("fp32", "auto: the GPU has no native bf16")
    if device.type == "cpu":
        native, detail = cpu_native_bf16()
        return Choice("bf16" if native else "fp32", f"auto: {'native' if native else 'no native'} bf16 ({detail})")
    return Choice("fp32", f"auto: fp32 on {device.type}")


def quantize_linear_layers(module):
    """Dynamic int8 quantization of every nn.Linear in `module`, in place; returns `module`.

    Weights become int8 (per output channel), activations are quantized per
    call, and products accumulate in int32 (fbgemm / oneDNN kernels). On an
    AVX2 CPU the transformer's linear maps, nearly all of its FLOPs, run about
    twice as fast (bench/README.md); the small agreement cost is measured there.
    """
    engines = torch.backends.quantized.supported_engines
    for engine in ("x86", "fbgemm", "onednn"):
        if engine in engines:
            torch.backends.quantized.engine = engine
            break
    else:
        raise ValueError(f"this PyTorch build has no int8 CPU kernels (engines: {', '.join(engines)})")
    with warnings.catch_warnings():  # torch.ao's deprecation notices: the kernels themselves are current
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def quantize_int8(model):
    """A detector made `int8`, in place; returns it: dynamic quantization of its
    SSL transformer's linear maps (nearly all of its FLOPs). Norms, convolutions,
    the feature projection and the head stay fp32. ValueError for a model
    without such a transformer (AASIST, RawNet2)."""
    encoder = getattr(getattr(model, "backbone", None), "encoder", None)
    if encoder is None:
        raise ValueError(f"int8 quantizes an SSL transformer; model {model.name!r} has none (use fp32)")
    for layer in encoder.transformer.layers:
        quantize_linear_layers(layer)
    return model
