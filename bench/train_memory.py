"""CPU training steps with glibc's default malloc against adf.cpu_memory's settings, side by side.

    python -m bench.train_memory                       # AASIST-L, 24 x 64,600 samples, bf16 where native
    python -m bench.train_memory --model tiny --steps 3 --batch 4 --seconds 4   # smoke test

Each setting runs in its own process (malloc settings are per process), one torch
thread, the same seeded model and batch: forward, backward and Adam step under
autocast (bf16 where the CPU computes it natively, else fp32). One `BENCH
train_memory` line per setting with the median per step of user and system CPU
seconds, wall seconds and minor page faults, then one `BENCH train_memory_ratio`
line: default over kept, for wall and CPU time.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

_STEP = r"""
import json, resource, statistics, sys, time, torch
from adf.cpu_memory import keep_freed_memory
from adf.models.registry import build_model
from adf.precision import cpu_native_bf16
kept, model_name, steps, batch, samples = sys.argv[1] == "kept", sys.argv[2], *map(int, sys.argv[3:6])
applied = keep_freed_memory() if kept else False
torch.set_num_threads(1)
torch.manual_seed(0)
model = build_model(model_name)
if hasattr(model, "input_policy"):
    model.input_policy = f"first-{samples}"
opt = torch.optim.Adam(model.parameters(), 1e-4)
x = torch.randn(batch, samples) * 0.1
bf16 = cpu_native_bf16()[0]
rows = []
for _ in range(steps + 1):  # the first step warms up
    r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(x)
    torch.nn.functional.cross_entropy(logits.float(), torch.arange(batch) % 2).backward()
    opt.step()
    opt.zero_grad()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    rows.append((r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime, time.perf_counter() - w0,
                 r1.ru_minflt - r0.ru_minflt))
med = [statistics.median(col) for col in zip(*rows[1:])]
print(json.dumps({"applied": applied, "bf16": bf16, "user_s": med[0], "sys_s": med[1], "wall_s": med[2],
                  "minor_faults": med[3]}))
"""


def run(setting, args):
    out = subprocess.run([sys.executable, "-c", _STEP, setting, args.model, str(args.steps), str(args.batch),
                          str(int(args.seconds * 16000))], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    from bench.common import machine, report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="aasist_l")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=4.0375, help="input length (64,600 samples)")
    args = parser.parse_args(argv)
    report("machine", **machine())
    results = {}
    for setting in ("default", "kept"):
        results[setting] = run(setting, args)
        report("train_memory", model=args.model, setting=setting, **results[setting])
    d, k = results["default"], results["kept"]
    report("train_memory_ratio", model=args.model, wall=d["wall_s"] / k["wall_s"],
           cpu=(d["user_s"] + d["sys_s"]) / (k["user_s"] + k["sys_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
