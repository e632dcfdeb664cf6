"""`adf export --onnx model.onnx --ckpt CKPT`: a detector as one ONNX graph for ONNX Runtime.

What is inside the graph and what is not
----------------------------------------
Inside: the checkpoint's input policy (adf.input_policy) and the model.
`whole` layer-norms each utterance over its valid samples; `first-N` takes
the first N samples, repeated from the start when the clip is shorter (a
gather with index `i mod length`), so every model input is N samples long.
Outside (the caller's part, as in `adf detect` before the policy): decoding,
mixing to mono and resampling to 16 kHz (`adf.audio.load_16k`; `OnnxDetector`
below does it).

Graph signature (both axes dynamic):

    inputs   waveform  float32 [batch, samples]  16 kHz mono, zero-padded to the longest
             lengths   int64   [batch]           valid samples of each row
    outputs  logits    float32 [batch, 2]        [fake, real] (label 1 = real)
             prob_real float32 [batch]           softmax(logits)[:, 1]

A padded batch gives each row the scores of that row alone, as `adf detect`
does: the waveform norm, the CNN lengths, the attention mask and the pooling
all follow `lengths` (w2v_small's per-channel group norm in the first CNN
layer is computed over the valid frames only). Fixed-input policies feed the
model unpadded N-sample rows, so any back-end exports (AASIST, RawNet2, SSL
+ AASIST ...); with the `whole` policy the back-end must mask padding
(`takes_mask`, adf.models.backends), which every whole-utterance model does.

The model's metadata (`metadata_props`) records the adf version, the
checkpoint's sha256, the architecture, the input policy, the sample rate and
the logit order. The graph's computation is adf.onnx_graph. The exporter is
torch's TorchScript-based one (it needs only the `onnx` package); `verify`
scores a padded batch of three synthetic inputs (another batch size and other
lengths than the traced example) with ONNX Runtime and with adf's own fp32
path, and the file is written only when they agree.
"""
from __future__ import annotations

import sys

DEFAULT_OPSET = 17


def _example():
    """A padded batch of two rows of different lengths for tracing (noise: the values do not matter)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    wav = torch.randn(2, 16000, generator=generator) * 0.1
    wav[1, 11200:] = 0
    return wav, torch.tensor([16000, 11200])


def _check_batch():
    """Rows for `verify`: another batch size and other lengths than the traced example, so
    a shape the tracer froze shows up as a wrong score or an error."""
    import torch

    generator = torch.Generator().manual_seed(1)
    return [torch.randn(n, generator=generator) * 0.1 for n in (27200, 6400, 17000)]


def reference_logits(model, wavs):
    """adf's own fp32 scores of 16 kHz waveforms, each alone (the path `adf detect` takes)."""
    import torch

    from adf.input_policy import policy_of

    policy = policy_of(model)
    with torch.inference_mode():
        return torch.cat([model(policy.for_scoring(torch.as_tensor(w))[None]) for w in wavs]).float().numpy()


def pad_batch(wavs):
    """(waveform float32 [B, T] zero-padded, lengths int64 [B]) of 1-D waveforms: the graph's inputs."""
    import numpy as np

    lengths = np.array([len(w) for w in wavs], dtype=np.int64)
    batch = np.zeros((len(wavs), int(lengths.max())), dtype=np.float32)
    for i, w in enumerate(wavs):
        batch[i, : len(w)] = np.asarray(w, dtype=np.float32)
    return batch, lengths


class OnnxDetector:
    """An exported detector in ONNX Runtime, with the preprocessing outside the graph
    (decode, mono, 16 kHz: adf.audio.load_16k). `threads` = intra-op threads (None: ORT's)."""

    def __init__(self, path, threads=None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def score_waveforms(self, wavs):
        """(logits [B, 2], prob_real [B]) of 16 kHz mono waveforms, scored as one padded batch."""
        waveform, lengths = pad_batch(wavs)
        from adf.onnx_graph import OUTPUTS

        return tuple(self.session.run(list(OUTPUTS), {"waveform": waveform, "lengths": lengths}))

    def score_files(self, paths, batch_size=8):
        """[fake, real] logits [N, 2] of audio files, in batches of `batch_size` in the given order."""
        import numpy as np

        from adf.audio import load_16k

        out = []
        for start in range(0, len(paths), batch_size):
            wavs = [load_16k(p).numpy() for p in paths[start : start + batch_size]]
            out.append(self.score_waveforms(wavs)[0])
        return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.float32)


def verify(path, model, wavs=None, engine=False):
    """Largest |logit difference| between the ONNX file at `path` (ONNX Runtime, one
    padded batch) and adf's fp32 model scoring each of `wavs` alone. `engine`: the
    file holds adf.onnx_graph.EngineGraph (inputs after the input policy)."""
    import numpy as np
    import torch

    wavs = _check_batch() if wavs is None else wavs
    if engine:
        from adf.input_policy import policy_of
        from adf.onnx_engine import OnnxRuntimeModel

        policy = policy_of(model)
        inputs = [policy.for_scoring(torch.as_tensor(w)) for w in wavs]
        batch = torch.nn.utils.rnn.pad_sequence(inputs, batch_first=True)
        lengths = torch.tensor([w.shape[0] for w in inputs])
        logits = OnnxRuntimeModel.open(path, model)(batch, lengths).numpy()
    else:
        logits, _ = OnnxDetector(path).score_waveforms([np.asarray(w) for w in wavs])
    return float(np.abs(logits - reference_logits(model, wavs)).max())


def export_onnx(model, path, opset=DEFAULT_OPSET, metadata=None, tolerance=1e-3, external_data=None,
                engine=False):
    """Write `model` (a loaded fp32 detector) with its input policy to `path` as ONNX, then
    check it (`verify`): ValueError, and no file, when ONNX Runtime's logits differ from
    adf's by more than `tolerance`. Returns that difference. Models over protobuf's 2 GB
    keep their weights in `<path>.data` beside it (`external_data` True/False forces it).
    `engine`: write adf.onnx_graph.EngineGraph instead (adf.onnx_engine's graph: the
    input policy outside, the embedding as second output)."""
    import os
    import tempfile
    import warnings

    import onnx
    import torch

    from adf.atomic import atomic_path
    from adf.onnx_graph import ENGINE_OUTPUTS, INPUTS, OUTPUTS, EngineGraph, ExportGraph

    refusal = getattr(model, "not_exportable", None)
    if refusal:
        raise ValueError(f"{model.name} does not export to ONNX: {refusal}")
    graph = (EngineGraph if engine else ExportGraph)(model).eval()
    outputs = ENGINE_OUTPUTS if engine else OUTPUTS
    example = _example()
    if engine:  # traced on model inputs: a fixed-input model at its own length (tracing freezes shapes)
        from adf.onnx_graph import apply_policy

        wav, lengths = apply_policy(graph.policy, *example)
        example = (wav, lengths if lengths is not None else torch.full((wav.shape[0],), wav.shape[1]))
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.TemporaryDirectory(dir=folder, prefix=".onnx-export-") as work:
        traced = os.path.join(work, "model.onnx")
        try:
            with torch.no_grad(), warnings.catch_warnings():
                # The TorchScript exporter: it needs only the onnx package (the torch.export one
                # also needs onnxscript), and it keeps the two dynamic axes.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                torch.onnx.export(
                    graph, example, traced, dynamo=False, opset_version=opset,
                    input_names=list(INPUTS), output_names=list(outputs),
                    dynamic_axes={"waveform": {0: "batch", 1: "samples"}, "lengths": {0: "batch"},
                                  **{name: {0: "batch"} for name in outputs}},
                )
        except Exception as err:  # noqa: BLE001 - the exporter raises many types; name the model
            raise ValueError(f"{model.name} does not export to ONNX: {type(err).__name__}: "
                             f"{str(err).splitlines()[0][:300]}") from err
        proto = onnx.load(traced)
        for key, value in (metadata or {}).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, str(value)
        large = proto.ByteSize() > 2_000_000_000 if external_data is None else external_data
        checked = os.path.join(work, os.path.basename(path))
        data_name = os.path.basename(path) + ".data"
        onnx.save(proto, checked, save_as_external_data=large, all_tensors_to_one_file=True,
                  location=data_name if large else None)
        del proto
        try:
            worst = verify(checked, model, engine=engine)
        except Exception as err:  # noqa: BLE001 - ONNX Runtime's own errors: a shape frozen by tracing
            raise ValueError(f"{model.name}: the exported graph fails in ONNX Runtime on a batch of another "
                             f"size and lengths ({str(err).splitlines()[0][:300]}); it does not export") from err
        if not worst <= tolerance:
            raise ValueError(f"{model.name}: ONNX Runtime's logits differ from adf's by {worst:.3g} "
                             f"(> {tolerance:g}); not written")
        if large:
            with atomic_path(os.path.join(folder, data_name)) as tmp:
                os.replace(os.path.join(work, data_name), tmp)
        with atomic_path(path) as tmp:
            os.replace(checked, tmp)
    return worst


# ---------------------------------------------------------------------------
# Command line: `adf export --onnx OUT.onnx --ckpt CKPT` (a target of adf.export)
# ---------------------------------------------------------------------------

def add_onnx_arguments(parser, required=True):
    """`--onnx` and `--opset`: what `adf export` adds to its own options to write ONNX."""
    parser.add_argument("--onnx", metavar="OUT.onnx", required=required,
                        help="write the detector as one ONNX graph (input policy inside; dynamic batch and "
                             "length axes, `lengths` input for padded batches)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default %(default)d)")


def export(args):
    """`adf export --onnx OUT --ckpt CKPT [--model NAME] [--input POLICY] [--opset N]`
    (an adf.export target; CKPT is a file, an exported folder or a Hub name)."""
    import os

    from adf import __version__
    from adf.audio import TARGET_SR
    from adf.checkpoints.files import check_checkpoint_path
    from adf.checkpoints.hub import resolve_checkpoint
    from adf.inference import load_detector
    from adf.input_policy import policy_of
    from adf.run_record import file_sha256

    def fail(message):
        print(f"adf export: error: {message}", file=sys.stderr)
        return 2

    ckpt = resolve_checkpoint(args.ckpt)
    check_checkpoint_path(ckpt)
    if os.path.exists(args.onnx) and os.path.samefile(args.onnx, ckpt):
        return fail(f"--onnx {args.onnx} is the checkpoint itself; choose another output")
    if args.input is not None:
        from adf.input_policy import get_policy

        get_policy(args.input)  # ValueError: one line from adf.cli
    model, _ = load_detector(ckpt, args.model, "cpu", "fp32", input_policy=args.input)
    policy = policy_of(model)
    metadata = {"adf_version": __version__, "model": model.name, "input_policy": policy.name,
                "checkpoint_sha256": file_sha256(ckpt), "sample_rate": TARGET_SR,
                "logits": "fake,real", "inputs": "waveform float32 [batch, samples] 16 kHz mono zero-padded; "
                                                  "lengths int64 [batch]"}
    worst = export_onnx(model, args.onnx, opset=args.opset, metadata=metadata)
    print(f"adf export: {model.name} (input policy {policy.name}) -> {args.onnx}; ONNX Runtime vs adf "
          f"fp32 on a padded batch of 3: max |logit difference| {worst:.2e}")
    return 0
