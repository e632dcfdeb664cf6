"""adf.cpu_memory: large freed buffers stay in the process, so reallocating them faults no pages."""
import json
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc malloc settings")

PROBE = r"""
import json, resource, sys, torch
from adf.cpu_memory import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "kept" else False
def churn(times):
    for _ in range(times):
        block = torch.empty(8 << 20)  # 32 MiB, far above malloc's mmap threshold
        block.fill_(1.0)
        del block
churn(10)  # warm up: the heap grows to its working size once
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn(20)
print(json.dumps({"applied": applied, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def faults(setting):
    out = subprocess.run([sys.executable, "-c", PROBE, setting], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_freed_blocks_are_reused_without_page_faults():
    default, kept = faults("default"), faults("kept")
    assert kept["applied"] and not default["applied"]
    pages = 20 * (32 << 20) // 4096  # what refaulting every block costs: 163,840 pages
    assert default["faults"] > pages // 2  # glibc unmaps and remaps each block
    assert kept["faults"] < pages // 20  # kept: the same heap pages are reused
