"""Host time per forward pass when the arithmetic costs nothing.

    python -m bench.overhead                      # mms_300m and xlsr_1b layouts, eager and compiled
    python -m bench.overhead --models w2v_small --batch 8

Each model keeps its layer layout (number of transformer and CNN layers, the
torchaudio modules, the padding mask) but every width shrinks to a few
channels, so what is left of a forward pass is the host's work: Python in the
modules, operator dispatch and, on a GPU, kernel launches. Compare it with
the GPU's wall time per batch (bench/gpu.sh): when the two are of the same
order, the GPU waits for the host and larger batches or fewer, fused kernels
(`compile_layers`) are what raise its utilisation. One thread, so the numbers
do not depend on the machine's load as much.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch


from adf.models.conv_paths import ConvPaths, Frontend
from bench.common import machine, report


def skeleton(name, compiled):
    """`name`'s layer layout with every width cut to a few channels (bf16 weights)."""
    from adf.models.backbones import backbone_config
    from adf.models.classifier import build_classifier

    cnn = [(8, kernel, stride) for _, kernel, stride in backbone_config(name)["extractor_conv_layer_config"]]
    model = build_classifier(name, encoder_embed_dim=32, encoder_num_heads=4, encoder_ff_interm_features=32,
                             extractor_conv_layer_config=cnn, encoder_pos_conv_groups=4, compile_layers=compiled)
    model = model.eval().set_precision("bf16")
    model.set_conv_paths(ConvPaths(Frontend.REFERENCE))  # torchaudio's modules: the layer layout alone, no adf conv path
    return model


def host_ms(model, batch, repeats):
    wav = torch.randn(batch, 4000)
    lengths = torch.tensor([4000 - 100 * i for i in range(batch)])  # padded: the mask path
    times = []
    with torch.inference_mode():
        for _ in range(3):
            model(wav, lengths)  # warm-up (and compilation)
        for _ in range(repeats):
            start = time.perf_counter()
            model(wav, lengths)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mms_300m", "xlsr_1b"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report("machine", **machine())
    for name in args.models:
        eager = host_ms(skeleton(name, False), args.batch, args.repeats)
        row = dict(model=name, layers=skeleton(name, False).config["encoder_num_layers"], eager_ms=eager)
        if args.compile:
            compiled = host_ms(skeleton(name, True), args.batch, args.repeats)
            row.update(compiled_ms=compiled, eager_over_compiled=eager / compiled)
        report("overhead", **row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
