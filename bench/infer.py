"""Inference throughput of adf's SSLClassifier against Hugging Face transformers.

    python -m bench.infer                          # w2v_small and mms_300m, CPU
    python -m bench.infer --models tiny --clips 4 --repeats 1   # smoke test

For each model (random weights), on clips of mixed lengths (2-12 s):
- `hf fp32 b1`: transformers' Wav2Vec2Model with the same weights, plain fp32,
  one clip at a time: the baseline a user would otherwise pick;
- `adf` in fp32 and int8 (dynamic quantization of the transformer's linear
  maps), `adf-onnxruntime` fp32 (`adf detect --engine onnxruntime`: the
  same model exported to ONNX and run by ONNX Runtime), and where the CPU computes bf16 natively (or with --bf16) bf16
  autocast over fp32 weights (torchaudio modules: what plain autocast gives)
  and the pure-bf16 fast path (`set_precision("bf16")`), each at batch size 1
  and batched (length-sorted, <= 5 % padding, adf.inference.plan_batches);
  with `--compile`, also the bf16 path with `compile_layers` (`adf-compiled`);
- the machine's GEMM peak in fp32 (and bf16), against which `mfu` is computed
  (int8 runs against the fp32 peak: the fraction of the fp32 limit it reaches).
Each measurement prints one `BENCH ...` line: audio seconds scored per wall
second (`x_realtime`), per process-CPU second (`x_realtime_cpu`, less
sensitive to other load on a shared machine), the ratio against the baseline
(`vs_hf`, from wall time; `vs_hf_cpu`), model-FLOP utilisation against the
matching GEMM peak (`mfu`), and the padding fraction of the batches.
`agree` lines check that int8/bf16 scores match fp32 and that batching changes nothing.
Then `pipeline`: how long the model waits for decoding (adf.inference with
worker processes on 44.1 kHz FLAC files); `startup`: seconds from launching `adf detect` (w2v_small checkpoint, one
2 s file) to its first forward pass, wall and the process's CPU time; and
`memory`: peak resident memory of `adf detect --precision bf16` (fp32 without
native bf16) against the size of the weights in that precision (fp32
checkpoint file, as the released ones).
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time

import numpy as np
import torch


from adf.models.conv_paths import ConvPaths, Frontend
from adf.precision import cpu_native_bf16, quantize_int8
from bench.common import SR, clip_lengths, clips, gemm_peak, machine, model_flops, report, timed


def hf_twin(model):
    """A transformers Wav2Vec2Model with `model`'s architecture, and `model`'s
    backbone loaded with its weights (via torchaudio's importer)."""
    from torchaudio.models.wav2vec2.utils import import_huggingface_model
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    c = model.config
    cnn = c["extractor_conv_layer_config"]
    cfg = Wav2Vec2Config(
        hidden_size=c["encoder_embed_dim"], num_hidden_layers=c["encoder_num_layers"],
        num_attention_heads=c["encoder_num_heads"], intermediate_size=c["encoder_ff_interm_features"],
        hidden_act="gelu", feat_extract_activation="gelu",
        feat_extract_norm="group" if c["extractor_mode"] == "group_norm" else "layer",
        conv_bias=c["extractor_conv_bias"], do_stable_layer_norm=c["encoder_layer_norm_first"],
        conv_dim=[x for x, _, _ in cnn], conv_kernel=[k for _, k, _ in cnn], conv_stride=[s for _, _, s in cnn],
        num_conv_pos_embeddings=c["encoder_pos_conv_kernel"],
        num_conv_pos_embedding_groups=c["encoder_pos_conv_groups"], layer_norm_eps=1e-5,
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
        layerdrop=0.0, apply_spec_augment=False,
    )
    hf = Wav2Vec2Model(cfg).eval()
    model.backbone.load_state_dict(import_huggingface_model(hf).state_dict())
    return hf


def batches_of(lengths, batch_size):
    from adf.inference import plan_batches

    return [[i] for i in range(len(lengths))] if batch_size == 1 else plan_batches(lengths, batch_size)


def pad(wavs, idx):
    batch = torch.nn.utils.rnn.pad_sequence([wavs[i] for i in idx], batch_first=True)
    return batch, torch.tensor([wavs[i].shape[0] for i in idx])


def frames_of(n, config):
    for _, k, s in config["extractor_conv_layer_config"]:
        n = (n - k) // s + 1
    return n


def run_adf(model, wavs, batches):
    out = {}
    with torch.inference_mode():
        for idx in batches:
            wav, lengths = pad(wavs, idx)
            logits = model(wav, lengths if len(idx) > 1 else None)
            out.update(zip(idx, logits.float()))
    return out


def run_hf(hf, wavs, batches, use_mask):
    with torch.inference_mode():
        for idx in batches:
            wav, lengths = pad(wavs, idx)
            mask = (torch.arange(wav.shape[1])[None] < lengths[:, None]).long() if use_mask and len(idx) > 1 else None
            hf(wav, attention_mask=mask)


def prob_real(logits):
    return torch.softmax(logits.double(), -1)[..., 1]


def bench_model(name, args, peaks):
    from adf.models.classifier import build_classifier

    torch.manual_seed(0)
    model = build_classifier(name).eval()
    hf = hf_twin(model)
    lengths = clip_lengths(args.clips, seed=args.seed)
    wavs = clips(lengths, seed=args.seed)
    audio_s = sum(lengths) / SR
    flops = sum(model_flops(model.config, n) for n in lengths)

    with torch.inference_mode():  # same weights: adf's frames equal transformers' hidden states
        w = wavs[0][None]
        diff = (model.frames(w)[0] - hf(w).last_hidden_state).abs().max().item()
    report("check", model=name, what="adf_vs_hf_hidden_maxdiff", value=diff)

    results, logits = {}, {}
    group_norm = model.config["extractor_mode"] == "group_norm"

    def measure(impl, precision, batch_size, fn):
        batches = batches_of(lengths, batch_size)
        shortest = [min(range(len(lengths)), key=lengths.__getitem__)]
        wall, cpu = timed(fn(batches), args.repeats, warmup=fn([shortest]))
        padded = sum(len(b) * max(frames_of(lengths[i], model.config) for i in b) for b in batches)
        useful = sum(frames_of(n, model.config) for n in lengths)
        key = "bf16" if precision == "bf16" else "fp32"  # (int8: against the fp32 limit)
        peak, peak_cpu = peaks[key], peaks[key + "_cpu"]
        results[impl, precision, batch_size] = wall, cpu
        base = results.get(("hf", "fp32", 1), (wall, cpu))
        report("infer", model=name, impl=impl, precision=precision, batch=batch_size,
               clips=len(lengths), audio_s=audio_s, wall_s=wall, x_realtime=audio_s / wall,
               x_realtime_cpu=audio_s / cpu, vs_hf=base[0] / wall, vs_hf_cpu=base[1] / cpu,
               mfu=flops / wall / peak, mfu_cpu=flops / cpu / peak_cpu,
               padding=1 - useful / padded,
               mean_batch=len(lengths) / len(batches))
        if impl == "hf":
            # The best any fp32 implementation can do here: every FLOP at the
            # measured GEMM peak. If this ceiling is under a speed target, no fp32
            # engineering reaches the target on this machine.
            at_peak = flops / peaks["fp32_cpu"]
            report("ceiling", model=name, precision="fp32", at_peak_s=at_peak,
                   ceiling_vs_hf_cpu=cpu / at_peak, hf_fraction_of_limit=at_peak / cpu)

    def adf_run(key):
        def make(batches):
            return lambda: logits.__setitem__(key, run_adf(model, wavs, batches))
        return make

    measure("hf", "fp32", 1, lambda b: lambda: run_hf(hf, wavs, b, not group_norm))
    hf = None  # release the transformers twin (its closure above has run)
    for bs in (1, args.batch_size):
        model.set_conv_paths(ConvPaths())
        measure("adf", "fp32", bs, adf_run(("fp32", bs)))
    exact = {k: v.clone() for k, v in model.state_dict().items()}
    # int8 (dynamic quantization of the transformer's linear maps) on a copy: the
    # AVX2 fast path, and an option everywhere.
    int8_model = build_classifier(name).eval()
    int8_model.load_state_dict(exact)
    quantize_int8(int8_model)
    for bs in (1, args.batch_size):
        measure("adf", "int8", bs, lambda b, bs=bs: lambda: logits.__setitem__(
            ("int8", bs), run_adf(int8_model, wavs, b)))
    int8_model = None
    runs = [("fp32", args.batch_size), ("int8", 1), ("int8", args.batch_size)]
    if args.onnxruntime:
        # `adf detect --engine onnxruntime`: the fp32 fast path where bf16 is not native
        import tempfile

        from adf.onnx_engine import OnnxRuntimeModel
        from adf.onnx_export import export_onnx

        fp32_model = build_classifier(name).eval()
        fp32_model.load_state_dict(exact)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, f"{name}.onnx")
            export_onnx(fp32_model, path, engine=True, tolerance=1e-4)
            engine = OnnxRuntimeModel.open(path, fp32_model)
            for bs in (1, args.batch_size):
                measure("adf-onnxruntime", "fp32", bs, lambda b, bs=bs: lambda: logits.__setitem__(
                    ("onnxruntime", bs), run_adf(engine, wavs, b)))
            engine = None
        runs += [("onnxruntime", 1), ("onnxruntime", args.batch_size)]
    if args.bf16:  # emulated bf16 (an AVX2-only CPU) would take tens of times longer: skipped there
        model.set_conv_paths(ConvPaths(Frontend.REFERENCE))  # plain autocast over fp32 weights, torchaudio's modules
        with torch.autocast("cpu", dtype=torch.bfloat16):
            measure("adf-autocast", "bf16", 1, adf_run(("autocast", 1)))
        model.set_conv_paths(ConvPaths())
        model.set_precision("bf16")
        for bs in (1, args.batch_size):
            measure("adf", "bf16", bs, adf_run(("bf16", bs)))
        runs += [("autocast", 1), ("bf16", 1), ("bf16", args.batch_size)]
        if args.compile:
            model.compile_layers()
            for bs in (1, args.batch_size):
                adf_run(("compiled", bs))(batches_of(lengths, bs))()  # compiles every graph the run needs
                measure("adf-compiled", "bf16", bs, adf_run(("compiled", bs)))
            runs += [("compiled", 1), ("compiled", args.batch_size)]

    ref = torch.stack([logits["fp32", 1][i] for i in range(len(lengths))])
    for key in runs:
        got = torch.stack([logits[key][i] for i in range(len(lengths))])
        dprob = (prob_real(got) - prob_real(ref)).abs()
        report("agree", model=name, run=f"{key[0]}_b{key[1]}", vs="fp32_b1",
               median_dprob=statistics.median(dprob.tolist()), max_dlogit=(got - ref).abs().max().item())
    compared = ("fp32", "int8") + (("onnxruntime",) if args.onnxruntime else ()) + (("bf16",) if args.bf16 else ())
    for precision in compared:
        one, many = logits[precision, 1], logits[precision, args.batch_size]
        report("agree", model=name, run=f"{precision}_b{args.batch_size}", vs=f"{precision}_b1",
               what="padding_invariance", max_dlogit=max((one[i] - many[i]).abs().max().item() for i in one))


# Runs `adf detect` in this interpreter's place and reports, on stderr, when the
# first forward pass starts, the RSS just before the checkpoint is loaded, and
# the peak RSS at exit.
_PROBE = r"""
import runpy, sys, time
import adf.checkpoints as ck
import adf.models.classifier as cl

def status_gib(field):
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith(field + ":")) / 2**20

rss_gib = lambda: status_gib("VmRSS")

load = ck.load_model
def load_model(*a, **k):
    print(f"PROBE rss_before_load_gib={rss_gib()}", file=sys.stderr, flush=True)
    return load(*a, **k)
ck.load_model = load_model
forward = cl.SSLClassifier.forward
def first(self, *a, **k):
    print(f"PROBE first_forward={time.time()}", file=sys.stderr, flush=True)
    print(f"PROBE cpu_to_first_forward={time.process_time()}", file=sys.stderr, flush=True)
    cl.SSLClassifier.forward = forward
    return forward(self, *a, **k)
cl.SSLClassifier.forward = first
sys.argv = ["adf"] + sys.argv[1:]
try:
    runpy.run_module("adf", run_name="__main__")
finally:
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over exec, so
    # a child spawned by a large parent (this benchmark, after writing an fp32
    # fixture) would report the parent's peak.
    peak = status_gib("VmHWM")
    print(f"PROBE peak_rss_gib={peak}", file=sys.stderr, flush=True)
"""


def run_detect(args_, cwd):
    """Run `adf detect args_` under _PROBE -> (PROBE values, wall seconds from spawn to first forward)."""
    import subprocess
    import time

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root)
    start = time.time()
    run = subprocess.run([sys.executable, "-c", _PROBE, "detect", *args_], cwd=cwd, env=env,
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"adf detect failed: {run.stderr[-2000:]}")
    probe = {}
    for line in run.stderr.splitlines():
        if line.startswith("PROBE "):
            key, value = line[6:].split("=")
            probe[key] = float(value)
    return probe, probe["first_forward"] - start


def write_fixture(folder, name, seconds=2.0):
    """A random-weight fp32 checkpoint of `name` (as released checkpoints are) and a short clip."""
    import soundfile as sf

    from adf.checkpoints import save_checkpoint
    from adf.models.classifier import build_classifier

    torch.manual_seed(0)
    model = build_classifier(name)
    ckpt = os.path.join(folder, f"{name}.safetensors")
    save_checkpoint(model, ckpt)
    clip = os.path.join(folder, "clip.wav")
    sf.write(clip, (0.1 * torch.randn(int(seconds * SR))).numpy(), SR)
    params = sum(p.numel() for p in model.parameters())
    return ckpt, clip, params


def bench_startup(name, repeats):
    """Seconds from starting `adf detect` on one 2 s file to its first forward pass."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        ckpt, clip, _ = write_fixture(folder, name)
        runs = [run_detect(["--ckpt", ckpt, "-o", "s.csv", "--overwrite", "--workers", "1", clip], folder)
                for _ in range(repeats)]
    times = [wall for _, wall in runs]
    report("startup", model=name, to_first_forward_s=statistics.median(times), runs=repeats,
           min_s=min(times), max_s=max(times),
           cpu_to_first_forward_s=statistics.median(probe["cpu_to_first_forward"] for probe, _ in runs))


def bench_memory(name, precision):
    """Peak resident memory of `adf detect --precision` on one short file, against the
    size of the weights in that precision."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        ckpt, clip, params = write_fixture(folder, name)
        probe, _ = run_detect(["--ckpt", ckpt, "-o", "s.csv", "--precision", precision, "--workers", "0",
                               clip], folder)
    weights = params * (2 if precision in ("bf16", "fp16") else 4) / 2**30
    report("memory", model=name, precision=precision, weights_gib=weights,
           rss_before_load_gib=probe["rss_before_load_gib"], peak_rss_gib=probe["peak_rss_gib"],
           peak_over_weights=probe["peak_rss_gib"] / weights,
           load_growth_over_weights=(probe["peak_rss_gib"] - probe["rss_before_load_gib"]) / weights)


def bench_pipeline(name, args):
    """`adf.inference.score_items` on local files that need decoding and resampling
    (44.1 kHz FLAC, 2-12 s): how long the model waits between batches for the
    DataLoader workers. `wait` is the time from the end of one forward pass to
    the start of the next (first batch excluded), as a share of the wall time."""
    import tempfile
    import time

    import soundfile as sf

    from adf.inference import Item, score_items
    from adf.models.classifier import SSLClassifier, build_classifier

    torch.manual_seed(0)
    precision = "bf16" if args.bf16 else "fp32"
    model = build_classifier(name).eval().set_precision(precision)
    spans, forward = [], SSLClassifier.forward

    def timed_forward(self, *a, **k):
        start = time.perf_counter()
        try:
            return forward(self, *a, **k)
        finally:
            spans.append((start, time.perf_counter()))

    with tempfile.TemporaryDirectory() as folder:
        items = []
        for i, n in enumerate(clip_lengths(args.clips, seed=args.seed)):
            path = os.path.join(folder, f"c{i}.flac")
            sf.write(path, (0.1 * torch.randn(int(n * 44100 / SR))).numpy(), 44100)
            items.append(Item(f"c{i}", path))
        SSLClassifier.forward = timed_forward
        try:
            start = time.perf_counter()
            scores = list(score_items(model, items, batch_size=args.batch_size, workers=args.workers))
            wall = time.perf_counter() - start
        finally:
            SSLClassifier.forward = forward
    assert all(s.ok for s in scores)
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:])]
    busy = sum(b - a for a, b in spans)
    report("pipeline", model=name, precision=precision, workers=args.workers, files=len(items), batches=len(spans),
           wall_s=wall, model_s=busy, wait_s=sum(gaps), wait_share=sum(gaps) / wall,
           max_wait_s=max(gaps, default=0.0), before_first_s=spans[0][0] - start)


def parameter_group(name):
    """The kind of a backbone parameter, for --agreement-sources."""
    if "layer_norm" in name:  # layer norms, and w2v_small's group norm
        return "norms"
    if "pos_conv_embed" in name:
        return "positional_conv"
    if name.endswith("bias"):
        return "biases"
    return "cnn_kernels" if "feature_extractor" in name else "matrices"


def bench_agreement(name, metadata, args):
    """bf16 against fp32 scores through `adf.inference.score_items` on real audio:
    one split (--agreement-split, default test; 'all' for every row) of a metadata
    CSV with `file`, `label` (real/fake) and `split` columns (egs_data/metadata.csv).
    Random weights unless --ckpt. With --agreement-sources, also where the
    difference comes from: each group of backbone parameters alone rounded to
    bf16 (and back), computed in fp32."""
    import pandas as pd

    from adf.inference import Item, score_items
    from adf.metrics import compute_eer
    from adf.models.classifier import build_classifier

    df = pd.read_csv(metadata)
    if args.agreement_split != "all":
        df = df[df["split"] == args.agreement_split]
    root = os.path.dirname(os.path.abspath(metadata))
    items = [Item(os.path.splitext(os.path.basename(f))[0], os.path.join(root, f), label=int(lab == "real"))
             for f, lab in zip(df["file"], df["label"])]
    if args.ckpt:
        from adf.checkpoints import load_model

        model = load_model(args.ckpt, model_name=name)
    else:
        torch.manual_seed(0)
        model = build_classifier(name).eval()
    exact = {k: v.clone() for k, v in model.state_dict().items()} if args.agreement_sources else None

    def scores(net=model, precision="fp32"):
        found = {s.item.id: s for s in score_items(net, items, batch_size=args.batch_size, workers=args.workers,
                                                    precision=precision)}
        return {i: found[i] for i in sorted(found)}

    reference = scores()
    ids = list(reference)
    labels = [reference[i].item.label for i in ids]
    real = np.array(labels) == 1
    fp32_scores = np.array([s.logit_real - s.logit_fake for s in reference.values()])
    fp32_gaps = fp32_scores[real][:, None] - fp32_scores[~real][None, :]
    eer_fp32 = 100 * compute_eer(fp32_scores, labels)[0]

    def compare(result, **fields):
        dprob = [abs(result[i].prob_real - reference[i].prob_real) for i in ids]
        got = np.array([result[i].logit_real - result[i].logit_fake for i in ids])
        # Real/fake pairs whose order this run reverses: each one the EER can step on.
        swapped = np.sign(fp32_gaps) != np.sign(got[real][:, None] - got[~real][None, :])
        eer = 100 * compute_eer(got, labels)[0]
        report("agree", model=name, **fields, vs="fp32", data=f"{os.path.basename(root)}/{args.agreement_split}",
               files=len(ids), weights=args.ckpt or "random", median_dprob=statistics.median(dprob),
               max_dprob=max(dprob), median_dscore=float(np.median(np.abs(got - fp32_scores))),
               swapped_pairs=int(swapped.sum()),
               widest_swapped_gap=float(np.abs(fp32_gaps[swapped]).max()) if swapped.any() else 0.0,
               eer_fp32=eer_fp32, eer=eer, eer_diff_points=abs(eer - eer_fp32))

    int8 = quantize_int8(copy.deepcopy(model))
    compare(scores(int8, "int8"), run="int8")
    int8 = None
    if not args.bf16:  # emulated bf16 would take tens of times longer
        return
    model.set_precision("bf16")
    compare(scores(), run="bf16")
    if not args.agreement_sources:
        return
    model.set_precision("fp32")
    groups = {}
    for key in exact:
        if key.startswith("backbone."):
            groups.setdefault(parameter_group(key), []).append(key)
    for group, keys in [("all_weights", [k for ks in groups.values() for k in ks]), *sorted(groups.items())]:
        model.load_state_dict({**exact, **{k: exact[k].bfloat16().float() for k in keys}})
        compare(scores(), run=f"fp32_with_{group}_rounded")
    model.load_state_dict(exact)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        compare(scores(), run="autocast")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["w2v_small", "mms_300m"])
    parser.add_argument("--clips", type=int, default=16, help="clips of 2-12 s per measurement")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true",
                        help="also time bf16 with compile_layers (torch.compile of each transformer layer)")
    parser.add_argument("--no-throughput", action="store_true", help="skip the throughput measurements")
    parser.add_argument("--no-onnxruntime", dest="onnxruntime", action="store_false",
                        help="skip `adf-onnxruntime` (adf detect --engine onnxruntime: the model exported "
                             "once, then run in ONNX Runtime in fp32)")
    parser.add_argument("--bf16", dest="bf16", action="store_true", default=None,
                        help="time the bf16 variants (default: only where the CPU computes bf16 natively)")
    parser.add_argument("--no-bf16", dest="bf16", action="store_false")
    parser.add_argument("--pipeline", default="w2v_small", metavar="MODEL",
                        help="time score_items on decoded/resampled files with MODEL ('' to skip)")
    parser.add_argument("--workers", type=int, default=1, help="decoding processes for --pipeline")
    parser.add_argument("--agreement", default=None, metavar="METADATA_CSV",
                        help="compare bf16 with fp32 scores on the test split of this metadata "
                             "(egs_data/metadata.csv) for each --models entry")
    parser.add_argument("--ckpt", default=None, help="trained weights for --agreement (default: random)")
    parser.add_argument("--agreement-split", default="test", help="split of --agreement's metadata, or 'all'")
    parser.add_argument("--agreement-sources", action="store_true",
                        help="also round each group of parameters alone to bf16 (computing in fp32), and run "
                             "plain autocast: where the bf16 difference comes from")
    parser.add_argument("--startup", default="w2v_small", metavar="MODEL",
                        help="time `adf detect` to its first forward with MODEL ('' to skip)")
    parser.add_argument("--memory", default="mms_300m", metavar="MODEL",
                        help="peak RSS of `adf detect --precision bf16` with MODEL ('' to skip; xlsr_2b "
                             "needs ~9 GB disk and RAM for the fp32 fixture)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    report("machine", **machine())
    native, why = cpu_native_bf16()
    report("precision", native_bf16=native, detail=why, capability=torch.backends.cpu.get_cpu_capability())
    args.bf16 = native if args.bf16 is None else args.bf16
    if not args.no_throughput:
        peaks = {}
        for key, dtype in {"fp32": torch.float32, **({"bf16": torch.bfloat16} if args.bf16 else {})}.items():
            peaks[key] = gemm_peak(dtype)
            peaks[key + "_cpu"] = gemm_peak(dtype, clock=time.process_time)  # per CPU second: robust to load
        for precision, peak in peaks.items():
            report("peak", device="cpu", precision=precision, tflops=peak / 1e12)
        for name in args.models:
            bench_model(name, args, peaks)
    if args.agreement:
        for name in args.models:
            bench_agreement(name, args.agreement, args)
    if args.pipeline:
        bench_pipeline(args.pipeline, args)
    if args.startup:
        bench_startup(args.startup, args.repeats)
    if args.memory:
        bench_memory(args.memory, "bf16" if args.bf16 else "fp32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
