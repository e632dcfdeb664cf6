"""Peak memory of a fine-tuning step: cross-entropy against the GRPO variants.

    python -m bench.grpo_memory                        # w2v_small, CPU, every variant
    python -m bench.grpo_memory --model tiny --steps 1 # smoke test

Each variant runs in a fresh process (so peak resident memory, ru_maxrss, is
its own): the model (random weights: memory does not depend on them), the
recipes' fused AdamW, then `--steps` training steps on a batch of
`--batch` noise clips of `--seconds` s: forward (train mode), loss, backward,
clipping, optimizer step. GRPO steps go through adf.grpo.GRPO (the loss SSLBrain
uses), which also runs the frozen reference and, in v1, the old policy.

Variants:
  ce               cross-entropy
  grpo_v2          on-policy, reference in bf16 (adf's default)
  grpo_v2_nokl     on-policy, beta 0: no reference copy at all
  grpo_v1          old policy (fp32) refreshed every K steps + reference in bf16
  grpo_v1_fp32ref  old policy + reference both fp32: the reference recipe's three full copies

Prints one `BENCH grpo_memory` line per variant: peak RSS (MiB), the memory of
the extra model copies (MiB), seconds per step.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (method, GRPO options)
VARIANTS = {
    "ce": ("ce", {}),
    "grpo_v2": ("grpo", dict(refresh_steps=0, beta=0.04, ref_precision="bf16")),
    "grpo_v2_nokl": ("grpo", dict(refresh_steps=0, beta=0.0)),
    "grpo_v1": ("grpo", dict(refresh_steps=2, beta=0.04, ref_precision="bf16")),
    "grpo_v1_fp32ref": ("grpo", dict(refresh_steps=2, beta=0.04, ref_precision="fp32")),
}


def one_variant(args):
    """Run in the child process: build, train `steps` steps, return the measurements."""
    import resource
    import time

    import torch
    import torch.nn.functional as F

    from adf.grpo import GRPO
    from adf.models.classifier import build_classifier
    from bench.common import adamw

    torch.manual_seed(0)
    method, options = VARIANTS[args.variant]
    model = build_classifier(args.model).train()
    copies_bytes = 0
    grpo = None
    if method == "grpo":
        grpo = GRPO(model, group_size=args.group_size, **options)
        for copy in (grpo.reference, grpo.old):
            if copy is not None:
                copies_bytes += sum(t.numel() * t.element_size() for t in copy.state_dict().values())
    optimizer = adamw([p for p in model.parameters() if p.requires_grad])
    n = int(args.seconds * 16000)
    wavs = torch.nn.functional.layer_norm(torch.randn(args.batch, n), (n,))
    lengths = torch.full((args.batch,), n)
    targets = torch.arange(args.batch) % 2
    times = []
    for step in range(1, args.steps + 1):
        start = time.perf_counter()
        logits = model(wavs, lengths)
        if grpo is None:
            loss = F.cross_entropy(logits.float(), targets)
        else:
            loss, _ = grpo.loss(logits, targets, wavs, lengths)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if grpo is not None:
            grpo.maybe_refresh(model, step)
        times.append(time.perf_counter() - start)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    params_mib = sum(p.numel() * 4 for p in model.parameters()) / 2 ** 20
    return dict(variant=args.variant, model=args.model, peak_rss_mib=round(peak_mib, 1),
                model_fp32_mib=round(params_mib, 1), extra_copies_mib=round(copies_bytes / 2 ** 20, 1),
                step_s=round(min(times), 2), batch=args.batch, seconds=args.seconds, steps=args.steps,
                group_size=args.group_size)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="w2v_small")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--batch", type=int, default=2, help="clips per batch")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per clip")
    parser.add_argument("--steps", type=int, default=3, help="training steps (v1 refreshes its copy every 2)")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # child process: run this one
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(one_variant(args)), flush=True)
        return 0

    from bench.common import machine, report

    print(f"# {json.dumps(machine())}")
    rows = []
    for variant in args.variants.split(","):
        if variant not in VARIANTS:
            parser.error(f"unknown variant {variant!r} ({', '.join(VARIANTS)})")
        cmd = [sys.executable, os.path.abspath(__file__), "--variant", variant, "--model", args.model,
               "--batch", str(args.batch), "--seconds", str(args.seconds), "--steps", str(args.steps),
               "--group-size", str(args.group_size)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        report("grpo_memory", **row)
        rows.append(row)
    base = next((r["peak_rss_mib"] for r in rows if r["variant"] == "ce"), None)
    print("\n| variant | peak RSS MiB | vs ce | extra copies MiB | s/step |\n|---|---:|---:|---:|---:|")
    for r in rows:
        delta = f"{r['peak_rss_mib'] - base:+.0f}" if base is not None else "-"
        print(f"| {r['variant']} | {r['peak_rss_mib']:.0f} | {delta} | {r['extra_copies_mib']:.0f} | {r['step_s']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
