"""Training throughput of the post-training data path and step on this machine.

    python -m bench.train                                   # tiny and w2v_small, CPU
    python -m bench.train --models tiny --steps 2 --files 24   # smoke test
    python -m bench.train --compile                         # also compile_layers, side by side
    python -m bench.train --compare-convs                   # also torchaudio's convolution modules, side by side

A generated corpus (noise clips of 2-12 s in mixed rates, written to a temp
folder) goes through the recipes' own pieces: `adf.data.pipeline.load_dataset`
(train stage: crop, resample, layer norm), SpeechBrain's DynamicBatchSampler
with the recipes' settings (`batch_length`, 20 buckets, `--batch-seconds`)
and `collate_skip_bad`; each step is SSLBrain's (forward with lengths,
cross-entropy, backward, gradient clipping, the recipes' fused AdamW). Prints
one `BENCH train` line per model: audio seconds per wall second, optimizer
steps per second, and the padding fraction of the dynamic batches (over a whole
epoch of the sampler); and one `BENCH optimizer` line: an AdamW step over the
model's parameters, torch's default implementation against the fused one.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch


from adf.models.conv_paths import ConvPaths, Frontend
from bench.common import adamw, bench_optimizer_step, machine, report

DEFAULT_BATCH_SECONDS = {"tiny": 40.0, "w2v_small": 30.0}


def write_corpus(folder, files, seed=0):
    """`files` noise clips of 2-12 s at 16/22.05/8 kHz and their train manifest."""
    import numpy as np
    import pandas as pd
    import soundfile as sf

    from adf.data.manifest import write_manifest

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(files):
        sr, seconds = (16000, 22050, 8000)[i % 3], float(rng.uniform(2.0, 12.0))
        path = os.path.join(folder, f"clip{i:04d}.wav")
        sf.write(path, (0.1 * rng.standard_normal(int(seconds * sr))).astype("float32"), sr)
        rows.append(dict(ID=f"clip{i:04d}", Label=("fake", "real")[i % 2], Duration=round(seconds, 3),
                         SampleRate=sr, Path=path, Attack="-", Speaker="-", Proportion="train",
                         AudioChannel=1, AudioEncoding="PCM_F", AudioBitSample=32, Language="-"))
    manifest = os.path.join(folder, "train.csv")
    write_manifest(pd.DataFrame(rows), manifest)
    return manifest


def padding_fraction(sampler, dataset):
    """Padded share of the samples in one epoch of `sampler`'s batches (by batch_length)."""
    from adf.data.pipeline import batch_length

    durations = dataset.data
    ids = dataset.data_ids
    padded = useful = 0.0
    for batch in sampler:
        lengths = [batch_length(durations[ids[i]]) for i in batch]
        padded += len(lengths) * max(lengths)
        useful += sum(lengths)
    return 1 - useful / padded, len(sampler)


def bench_model(name, manifest, args, compiled=False, convs="default"):
    import torch.nn.functional as F
    from speechbrain.dataio.sampler import DynamicBatchSampler

    from adf.data.pipeline import absolute_lengths, batch_length, collate_skip_bad, load_dataset
    from adf.models.classifier import build_classifier

    dataset = load_dataset(manifest, None, "train", seed=args.seed)
    seconds = args.batch_seconds or DEFAULT_BATCH_SECONDS.get(name, 30.0)
    sampler = DynamicBatchSampler(dataset, max_batch_length=seconds, num_buckets=20,
                                  length_func=batch_length, shuffle=True, batch_ordering="random",
                                  seed=args.seed)
    padding, n_batches = padding_fraction(sampler, dataset)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_skip_bad,
                                         num_workers=args.workers)
    torch.manual_seed(args.seed)
    model = build_classifier(name, compile_layers=compiled).train()
    if convs == "torchaudio":
        model.set_conv_paths(ConvPaths(Frontend.REFERENCE))  # torchaudio's modules, the earlier CPU training path
    if not compiled and convs == "default":
        bench_optimizer_step(name, model)
    optimizer = adamw(model.parameters())

    def step(batch):
        wavs, _ = batch.wav
        lengths = absolute_lengths(batch.wav)
        logits = model(wavs, lengths)
        loss = F.cross_entropy(logits.float(), batch.target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
        optimizer.step()
        return int(lengths.sum())

    batches = iter(loader)
    for _ in range(2 if compiled else 1):  # warm-up (compiled: graphs with and without padding)
        step(next(batches))
    samples, steps, start = 0, 0, time.perf_counter()
    for batch in batches:
        samples += step(batch)
        steps += 1
        if steps == args.steps:
            break
    wall = time.perf_counter() - start
    report("train", model=name, compiled=compiled, convs=convs, batch_seconds=seconds, steps=steps, audio_s=samples / 16000, wall_s=wall,
           x_realtime=samples / 16000 / wall, steps_per_s=steps / wall, padding=padding,
           batches_per_epoch=n_batches, workers=args.workers)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny", "w2v_small"])
    parser.add_argument("--files", type=int, default=120, help="generated clips of 2-12 s")
    parser.add_argument("--steps", type=int, default=4, help="timed optimizer steps (after one warm-up)")
    parser.add_argument("--batch-seconds", type=float, default=None,
                        help="dynamic batch size in seconds (default: tiny 40, w2v_small 30)")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader worker processes")
    parser.add_argument("--compile", action="store_true",
                        help="also time each model with compile_layers (torch.compile), side by side")
    parser.add_argument("--compare-convs", action="store_true",
                        help="also time each model with torchaudio's convolution modules, side by side")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    report("machine", **machine())
    with tempfile.TemporaryDirectory() as folder:
        manifest = write_corpus(folder, args.files, args.seed)
        for name in args.models:
            for compiled in (False, True) if args.compile else (False,):
                bench_model(name, manifest, args, compiled)
            if args.compare_convs:
                bench_model(name, manifest, args, convs="torchaudio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
