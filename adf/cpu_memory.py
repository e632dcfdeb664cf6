"""Keep freed tensor memory in the process during CPU training (glibc malloc settings).

Why: glibc serves every allocation above its mmap threshold (128 KiB, rising to
at most 32 MiB) with a fresh `mmap` and gives it back with `munmap` when freed,
and trims the top of its heap when more than 128 KiB there is free. A CPU
training step allocates and frees hundreds of large activations, so the
kernel zero-fills and faults in their pages again at every step: AASIST-L
(batches of 24 windows of 64,600 samples, bf16 autocast, one thread) took
7 million minor page faults and 20 s of system time per 40 s step. With large
buffers taken from the heap and the heap never trimmed, the same step faults
about 0.1 million times and takes 17 s (bench: `python -m bench.train_memory`).

The numbers a model computes do not depend on where its buffers live, so
results are unchanged; the cost is that the process keeps its peak heap until
it exits (training processes keep it anyway, one step later).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4
TOP_PAD = 256 << 20  # grow the heap in steps of 256 MiB: fewer brk calls while it reaches its peak


def keep_freed_memory() -> bool:
    """Tell glibc malloc to serve large blocks from the heap and never trim it;
    True when applied, False where the C library is not glibc (nothing changes)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    done = [libc.mallopt(M_MMAP_MAX, 0),  # no mmap per allocation
            libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1),  # (an int): freed heap stays
            libc.mallopt(M_TOP_PAD, TOP_PAD)]
    return all(r == 1 for r in done)
