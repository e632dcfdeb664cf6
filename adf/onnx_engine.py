"""`adf detect --engine onnxruntime`: adf's fp32 CPU inference run by ONNX Runtime.

Why: on CPUs without native bf16 (AVX2-only machines) fp32 is what
`--precision auto` gives, and there adf's torch path is bound by the speed of
torch's fp32 matrix products, as transformers is. ONNX Runtime's own kernels
and thread pool are a second exact fp32 implementation: 1.10-1.28x
transformers fp32 on w2v_small with the same scores on a loaded 2-core EPYC,
and twice adf torch with two threads under load (bench/README.md, "The ONNX
Runtime engine"), also for deployments that would rather not run torch's
OpenMP threads.

How: the loaded fp32 model is exported once (adf.onnx_export with
adf.onnx_graph.EngineGraph: the input policy stays outside the graph, where
`adf detect` applies it while decoding, and the pooled embedding is a second
output), checked against adf's torch fp32 path (the export refuses a graph
that disagrees), and cached as `<cache>/onnxruntime/<model>-<key>.onnx`
(`<cache>`: adf.user_cache, ~/.cache/adf by default).
The key covers what the graph depends on: the checkpoint's sha256, the
architecture, the input policy and the adf, torch and opset versions. Later
runs load the cached file; one that ONNX Runtime cannot load is exported again.

`OnnxRuntimeModel` then stands in for the torch model in adf.inference: the
same call (wav [B, T], lengths [B]) -> logits [B, 2] (and the embedding), and
the torch model's attributes (name, input policy, CNN configuration), read
from the torch model, whose weights are dropped (moved to the meta device)
so that the weights are held once, by ONNX Runtime.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys

import torch

ENGINES = ("torch", "onnxruntime")
GRAPH_VERSION = 1  # bump when adf.onnx_graph.EngineGraph computes something else


def cache_path(model, checkpoint_sha256):
    """Where the engine graph of `model` loaded from a checkpoint with that sha256 is cached."""
    from adf import __version__
    from adf.input_policy import policy_of
    from adf.onnx_export import DEFAULT_OPSET

    key = json.dumps({"checkpoint": checkpoint_sha256, "model": model.name, "input": policy_of(model).name,
                      "adf": __version__, "torch": torch.__version__, "opset": DEFAULT_OPSET,
                      "graph": GRAPH_VERSION}, sort_keys=True)
    from adf.user_cache import cache_dir

    return cache_dir("onnxruntime", f"{model.name}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.onnx")


class OnnxRuntimeModel(torch.nn.Module):
    """An EngineGraph file in ONNX Runtime, called like the torch model it was exported from."""

    def __init__(self, session, model):
        super().__init__()
        self.session = session
        self.__dict__["torch_model"] = model  # not a submodule: .to() and .eval() leave it alone
        self.feeds = {i.name for i in session.get_inputs()}  # a fixed-input graph has no `lengths`

    @classmethod
    def open(cls, path, model, threads=None):
        """Load `path` in ONNX Runtime (CPU, `threads` intra-op threads, default torch's)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return cls(session, model)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.__dict__["torch_model"], name)

    def parameters(self, recurse=True):
        """The torch model's (on the meta device): what the model is, for counts and summaries."""
        return self.torch_model.parameters(recurse)

    def forward(self, wav, lengths=None, return_embedding=False):
        from adf.onnx_graph import ENGINE_OUTPUTS

        wav = wav.float().contiguous()
        feed = {"waveform": wav.numpy()}
        if "lengths" in self.feeds:
            if lengths is None:
                lengths = torch.full((wav.shape[0],), wav.shape[1])
            feed["lengths"] = lengths.to(torch.int64).numpy()
        logits, emb = (torch.from_numpy(x) for x in self.session.run(list(ENGINE_OUTPUTS), feed))
        return (logits, emb) if return_embedding else logits


def onnxruntime_model(model, checkpoint, threads=None, log=None):
    """`model` (loaded fp32 on the CPU from the file `checkpoint`) as an OnnxRuntimeModel,
    exported on first use and cached (module docstring). `log(text)` hears about an export."""
    from adf.checkpoints.hub import file_sha256
    from adf.onnx_export import export_onnx

    log = log or (lambda text: print(text, file=sys.stderr))
    path = cache_path(model, file_sha256(checkpoint))
    engine = None
    if os.path.exists(path):
        try:
            engine = OnnxRuntimeModel.open(path, model, threads)
        except Exception as err:  # noqa: BLE001 - ONNX Runtime's load errors have many types
            log(f"onnxruntime engine: the cached graph {path} does not load ({type(err).__name__}); "
                "exporting it again")
    if engine is None:
        log(f"onnxruntime engine: exporting {model.name} once (cached at {path})")
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            export_onnx(model, path, engine=True, tolerance=1e-4)
        except OSError as err:
            raise ValueError(f"onnxruntime engine: cannot write the graph cache {os.path.dirname(path)} "
                             f"({err.strerror or err}); point ADF_CACHE_DIR at a writable folder") from err
        engine = OnnxRuntimeModel.open(path, model, threads)
    model.to("meta")  # the weights now live in ONNX Runtime; the attributes stay readable
    return engine
