"""CPU inference speed of the comparison systems (issue 12 §5), next to the AntiDeepfake models.

    python -m bench.systems                                   # the default list below, CPU
    python -m bench.systems --systems tiny_aasist aasist_l --clips 3 --repeats 1   # smoke test

For each system (random weights, eval mode, fp32) on clips of 2-6 s prepared by
the system's own input policy (adf.input_policy: the fixed-input systems see
64,600 samples = 4.04 s of every clip, tiled when shorter; `whole` systems the
whole clip, layer-normed):

- `systems-infer`: audio seconds the model sees per wall second (`x_realtime`;
  its inverse is the real-time factor `rtf`) and per process-CPU second, at
  batch size 1 and batched (adf.inference.plan_batches: length-sorted, <= 5 %
  padding; fixed-input batches have none);
- `systems-agree`: the largest |logit| difference between the batched run and
  batch size 1, and between a padded batch of mixed lengths (lengths given,
  padding filled with noise) and each clip alone, for every system whatever its
  policy. The bench stops with an error when either exceeds --tolerance;
- `systems-profile`: where a batch-1 pass spends its CPU time: the front-end (the
  SSL backbone, or the raw-waveform systems' sinc filterbank and residual
  encoder), the back-end, and inside the back-ends the parts asked about:
  graph attention (AASIST's GAT, HS-GAL and graph pooling layers), the selective
  scan (Mamba), the Conformer blocks (TCM), and the raw-waveform systems' sinc
  filterbank and GRU (RawNet2).

The full-size SSL systems are built on XLS-R 300M (24 layers of 1024); on a
2-core CPU the default list uses W2V-Small (12 layers of 768, 3.3x fewer
backbone FLOPs) as the backbone of every SSL back-end instead, so that the
back-ends' own cost stands out rather than less; `--systems xlsr_300m_aasist ...`
times the full size.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections import defaultdict

import torch

from bench.common import SR, clip_lengths, clips, machine, report, timed
from bench.infer import pad as zero_padded

DEFAULT_SYSTEMS = ("rawnet2", "aasist_l", "aasist", "w2v_small", "w2v_small_aasist", "w2v_small_sls",
                   "w2v_small_tcm", "w2v_small_mamba", "w2v_small_vib")


def build(name, seed=0):
    from adf.models.registry import build_model

    torch.manual_seed(seed)
    return build_model(name).eval()


def model_inputs(model, n_clips, seed=0, low=2.0, high=6.0):
    """The clips as the model's input policy feeds them (fixed-input: all 64,600 samples)."""
    from adf.input_policy import policy_of

    policy = policy_of(model)
    raw = clips(clip_lengths(n_clips, low, high, seed), seed)
    return [policy.for_scoring(w) for w in raw]


def pad(wavs, idx, fill=None, seed=0):
    """The clips `idx` as one batch [B, T] (padding zeros, or noise of scale `fill`) and their lengths."""
    batch, lengths = zero_padded(wavs, idx)
    if fill is not None:
        g = torch.Generator().manual_seed(seed)
        noise = fill * torch.randn(batch.shape, generator=g)
        batch = torch.where(torch.arange(batch.shape[1])[None] < lengths[:, None], batch, noise)
    return batch, lengths


def score(model, wavs, batches, fill=None):
    """{clip index: logits} over `batches` (lists of indices); lengths are passed for
    batches of several clips, as the scoring engine does."""
    out = {}
    with torch.inference_mode():
        for idx in batches:
            wav, lengths = pad(wavs, idx, fill)
            logits = model(wav, lengths if len(idx) > 1 else None)
            out.update(zip(idx, logits.float()))
    return out


def gap(a, b):
    return max((a[i] - b[i]).abs().max().item() for i in a)


def batching_gaps(model, wavs, batch_size, mixed=None):
    """(batched vs alone, padded mixed-length batch vs alone): max |logit difference|.

    `wavs` are the policy's inputs (scored in batches of `batch_size`); `mixed`
    are clips of different lengths (default: `wavs` cut to 60-100 % of their
    length), scored as one batch with noise in the padding."""
    from adf.inference import plan_batches

    alone = score(model, wavs, [[i] for i in range(len(wavs))])
    batched = score(model, wavs, plan_batches([w.shape[0] for w in wavs], batch_size))
    if mixed is None:
        floor = getattr(model, "min_samples", 1)
        mixed = [w[: max(floor, int(w.shape[0] * (0.6 + 0.4 * k / max(len(wavs) - 1, 1))))]
                 for k, w in enumerate(wavs)]
    mixed_alone = score(model, mixed, [[i] for i in range(len(mixed))])
    mixed_padded = score(model, mixed, [list(range(len(mixed)))], fill=3.0)
    return gap(batched, alone), gap(mixed_padded, mixed_alone)


# --- where the time goes --------------------------------------------------------------
GRAPH_MODULES = ("GraphAttention", "HeteroGraphAttention", "GraphPool")


class Stopwatch:
    """Process-CPU seconds per named part, from forward hooks and wrapped callables
    (CPU time: other jobs on a shared machine do not count; with --threads 1 it is
    exactly the work done)."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self._start = {}
        self._handles = []

    def hook(self, module, part):
        def pre(mod, args):
            self._start[id(mod), part] = time.process_time()

        def post(mod, args, out):
            self.seconds[part] += time.process_time() - self._start.pop((id(mod), part))

        self._handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]

    def wrap(self, fn, part):
        def timed_fn(*args, **kwargs):
            t0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[part] += time.process_time() - t0
        return timed_fn

    def remove(self):
        for h in self._handles:
            h.remove()


@contextlib.contextmanager
def instrumented(model):
    """A Stopwatch on `model`'s parts (module docstring) while the block runs."""
    import adf.models.backends.mamba as mamba

    watch = Stopwatch()
    patched_scan = mamba.selective_scan
    is_ssl = hasattr(model, "backbone")
    if is_ssl:
        model.frames = watch.wrap(model.frames, "front-end (SSL backbone)")
        head = model.head
        watch.hook(head, "back-end")
    else:
        for name, child in model.named_children():
            watch.hook(child, "front-end (sinc + encoder)" if name in model.frontend_modules else "back-end")
        head = model
    for sub in head.modules():
        kind = type(sub).__name__
        if kind in GRAPH_MODULES:
            watch.hook(sub, "graph attention")
        elif kind.endswith("ConformerBlock"):
            watch.hook(sub, "conformer blocks")
        elif kind == "SincFilterbank":
            watch.hook(sub, "sinc filterbank")
        elif kind == "GRU":
            watch.hook(sub, "GRU")
    mamba.selective_scan = watch.wrap(patched_scan, "selective scan")
    try:
        yield watch
    finally:
        mamba.selective_scan = patched_scan
        watch.remove()
        if is_ssl:
            del model.frames  # back to the class's method


def profile(model, wavs):
    """(CPU seconds, {part: share of them}) of one batch-1 pass over `wavs`."""
    with instrumented(model) as watch:
        t0 = time.process_time()
        score(model, wavs, [[i] for i in range(len(wavs))])
        total = time.process_time() - t0
    return total, {part: s / total for part, s in sorted(watch.seconds.items())}


# --- the bench -----------------------------------------------------------------------
def bench_system(name, args):
    from adf.inference import plan_batches
    from adf.input_policy import policy_of

    model = build(name)
    wavs = model_inputs(model, args.clips, args.seed)
    lengths = [w.shape[0] for w in wavs]
    audio_s = sum(lengths) / SR
    params = sum(p.numel() for p in model.parameters())
    policy = policy_of(model).name
    for batch_size in (1, args.batch_size):
        batches = [[i] for i in range(len(wavs))] if batch_size == 1 else plan_batches(lengths, batch_size)
        wall, cpu = timed(lambda b=batches: score(model, wavs, b), args.repeats)
        report("systems-infer", model=name, policy=policy, params=params, batch=batch_size, clips=len(wavs),
               audio_s=audio_s, wall_s=wall, x_realtime=audio_s / wall, x_realtime_cpu=audio_s / cpu,
               rtf=wall / audio_s)
    batched, padded = batching_gaps(model, wavs, args.batch_size)
    report("systems-agree", model=name, batched_vs_alone=batched, padded_vs_alone=padded)
    if max(batched, padded) > args.tolerance:
        raise AssertionError(f"{name}: batching/padding changed a logit by {max(batched, padded):.3g} "
                             f"(> {args.tolerance})")
    total, shares = profile(model, wavs)
    for part, share in shares.items():
        report("systems-profile", model=name, part=part.replace(" ", "_"), share=share, total_cpu_s=total)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", nargs="+", default=list(DEFAULT_SYSTEMS))
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1 on a loaded machine: CPU time then measures the work alone)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest |logit| change batching or padding may cause (fp32)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    report("machine", **machine())
    for name in args.systems:
        bench_system(name, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
