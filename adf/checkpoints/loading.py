"""Strict loading of detectors and backbones; adf's own checkpoint format.

Every load checks the file's keys and shapes against the model first and
fails with one CheckpointError that names the file and lists the missing,
unexpected and mis-shaped keys (the reference skipped what it could not place
and went on with random weights).

adf's own checkpoints are safetensors files with the model's keys and
metadata: `format` (FORMAT), `model_name` (a registry name), `backbone_config`
(SSL models: JSON of the torchaudio configuration, so test-sized or modified
models round-trip), `model_config` (raw-waveform models, for information),
`backend_options` (JSON of the back-end's options), `input_policy` (how the
model was trained and is to be scored, adf.input_policy) and `extra` (JSON,
free for the caller: step, validation EER, ...). Files without the newer
fields get the registry's defaults.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from adf.checkpoints.architecture import equivalent_names, infer_backend_options, infer_model_name
from adf.checkpoints.files import (CheckpointError, metadata_json, read_file,
                                   write_safetensors)
from adf.checkpoints.hub import resolve_checkpoint
from adf.checkpoints.keys import BACKBONE_PREFIX, BACKEND_PREFIX, HEAD_KEYS, key_style, to_adf_keys

logger = logging.getLogger(__name__)

FORMAT = "adf-detector-v1"


@dataclass
class Checkpoint:
    """A checkpoint file read into SSLClassifier keys.

    `source` says what the file was: 'adf', 'antideepfake' or 'fairseq' (key
    style); `model_name` / `backbone_config` / `extra` come from adf metadata
    and are None / None / {} for other files.
    """

    path: Path
    state_dict: dict
    source: str
    model_name: str | None = None
    backbone_config: dict | None = None
    extra: dict = field(default_factory=dict)
    input_policy: str | None = None
    backend_options: dict | None = None

    @property
    def has_head(self):
        """Whether the file holds more than a backbone (a mean head, a back-end or a whole
        raw-waveform detector)."""
        return not all(k.startswith(BACKBONE_PREFIX) for k in self.state_dict)


# A stored backbone configuration is untrusted input: every field is checked
# (type and range) before anything is built, so a crafted file cannot make the
# loader build 10^7 layers. Ranges are far beyond every real model (XLS-R 2B:
# 48 layers of 1920, FFN 7680, 2.2e9 parameters).
_INT_FIELDS = {"encoder_embed_dim": (1, 8192), "encoder_pos_conv_kernel": (1, 1024),
               "encoder_pos_conv_groups": (1, 8192), "encoder_num_layers": (1, 256),
               "encoder_num_heads": (1, 256), "encoder_ff_interm_features": (1, 65536)}
_RATE_FIELDS = ("encoder_projection_dropout", "encoder_attention_dropout", "encoder_ff_interm_dropout",
                "encoder_dropout", "encoder_layer_drop")
_BOOL_FIELDS = ("extractor_conv_bias", "encoder_layer_norm_first")
MAX_PARAMETERS = 2e10


def check_backbone_config(config, path):
    """Raise CheckpointError unless `config` (JSON from a checkpoint's metadata) is
    a sane torchaudio wav2vec2 configuration: every field present, of its type
    and within its range, heads and groups dividing the embedding size."""
    def bad(what):
        return CheckpointError(f"{path}: stored backbone_config: {what}")

    if not isinstance(config, dict):
        raise bad("not a mapping")
    known = {*_INT_FIELDS, *_RATE_FIELDS, *_BOOL_FIELDS, "extractor_mode", "extractor_conv_layer_config"}
    unknown, missing = sorted(set(config) - known), sorted(known - set(config))
    if unknown or missing:
        raise bad("; ".join(([f"unknown field(s) {unknown}"] if unknown else [])
                            + ([f"missing field(s) {missing}"] if missing else [])))
    for key, (low, high) in _INT_FIELDS.items():
        value = config[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise bad(f"{key} must be an integer in [{low}, {high}] (got {value!r})")
    for key in _RATE_FIELDS:
        value = config[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
            raise bad(f"{key} must be a number in [0, 1] (got {value!r})")
    for key in _BOOL_FIELDS:
        if not isinstance(config[key], bool):
            raise bad(f"{key} must be true or false (got {config[key]!r})")
    if config["extractor_mode"] not in ("group_norm", "layer_norm"):
        raise bad(f"extractor_mode must be group_norm or layer_norm (got {config['extractor_mode']!r})")
    conv = config["extractor_conv_layer_config"]
    if not isinstance(conv, list) or not 1 <= len(conv) <= 16 or not all(
            isinstance(layer, list) and len(layer) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 8192 for v in layer)
            for layer in conv):
        raise bad("extractor_conv_layer_config must be 1 to 16 [channels, kernel, stride] triples "
                  f"of integers in [1, 8192] (got {conv!r:.200})")
    dim = config["encoder_embed_dim"]
    for key in ("encoder_num_heads", "encoder_pos_conv_groups"):
        if dim % config[key]:
            raise bad(f"{key} {config[key]} does not divide encoder_embed_dim {dim}")
    size = config["encoder_num_layers"] * (4 * dim * dim + 2 * dim * config["encoder_ff_interm_features"])
    if size > MAX_PARAMETERS:
        raise bad(f"the transformer alone would have {size:.2g} parameters (limit {MAX_PARAMETERS:.0g})")


def read_checkpoint(path, trust_pickle=False, dtype=None):
    """Read any supported checkpoint file (see adf.checkpoints) into a Checkpoint;
    `path` may also name an exported folder or a Hub model (adf.checkpoints.hub);
    `dtype` casts its floating-point tensors while reading (see read_file)."""
    raw = read_file(resolve_checkpoint(path), trust_pickle=trust_pickle, dtype=dtype)
    meta = raw.metadata if raw.metadata.get("format") == FORMAT else {}
    config = metadata_json(meta, "backbone_config", raw.path)
    if config is not None:
        check_backbone_config(config, raw.path)
        # JSON turns the CNN's tuples into lists
        config["extractor_conv_layer_config"] = [tuple(x) for x in config["extractor_conv_layer_config"]]
    return Checkpoint(
        path=raw.path,
        state_dict=to_adf_keys(raw.tensors),
        source=raw.metadata.get("source") or key_style(raw.tensors),
        model_name=meta.get("model_name"),
        backbone_config=config,
        extra=metadata_json(meta, "extra", raw.path) or {},
        input_policy=meta.get("input_policy"),
        backend_options=metadata_json(meta, "backend_options", raw.path),
    )


def read_state_dict(path):
    """The weights of a checkpoint file under SSLClassifier keys, read safely.

    Pre-training-only fairseq keys are dropped; keys that cannot be renamed
    keep their stored names (strict loading then reports them).
    """
    return read_checkpoint(path).state_dict


def _some(keys, n=8):
    keys = list(keys)
    more = f" (and {len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def check_fits(expected, given, path, what):
    """Raise CheckpointError unless `given` has exactly the keys and shapes of `expected`.

    `expected` maps key -> tensor (a model's state_dict, possibly on the meta device).
    """
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    misshaped = [f"{k} {tuple(given[k].shape)} vs {tuple(expected[k].shape)} expected"
                 for k in sorted(set(expected) & set(given))
                 if tuple(given[k].shape) != tuple(expected[k].shape)]
    # An integer (or bool) tensor where the model has floating-point weights would
    # be assigned as it is and fail, or compute garbage, only when scoring.
    mistyped = [f"{k} {str(given[k].dtype).replace('torch.', '')}" for k in sorted(set(expected) & set(given))
                if expected[k].is_floating_point() and not given[k].is_floating_point()]
    problems = [f"{len(v)} {label}: {_some(v)}" for label, v in
                (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped),
                 ("not floating-point", mistyped)) if v]
    if problems:
        raise CheckpointError(f"{path}: does not fit {what}: " + "; ".join(problems))


def check_finite(state_dict, path):
    """Raise CheckpointError when a floating-point weight holds NaN or Inf: such a
    model scores every input NaN, and no such number may become a score."""
    bad = [k for k, v in state_dict.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{path}: {len(bad)} weight tensor(s) hold NaN or infinite values: {_some(bad)}")


def _choose_architecture(ckpt, model_name, overrides, name_hint=None):
    """(name, backbone overrides) for building the model of `ckpt`; `name_hint` picks
    among architecture-identical names when the name is inferred from the shapes."""
    if model_name is not None:
        return model_name, overrides
    if ckpt.model_name is not None:
        return ckpt.model_name, {**(ckpt.backbone_config or {}), **overrides}
    try:
        name = infer_model_name(ckpt.state_dict)
    except CheckpointError as err:
        raise CheckpointError(f"{ckpt.path}: {err}") from None
    if name_hint is not None and name_hint != name and name_hint in equivalent_names(name):
        return name_hint, overrides
    same = [n for n in equivalent_names(name) if n != name]
    logger.info("%s: no model name given; inferred %r from the weight shapes%s", ckpt.path, name,
                f" (architecture-identical to {', '.join(same)})" if same else "")
    return name, overrides


def _published_backend_options(state_dict, name):
    """Back-end options implied by the weights of a file without adf metadata ({} if none)."""
    from adf.models.registry import model_spec

    try:
        spec = model_spec(name)
    except KeyError:
        return {}
    if spec.kind != "ssl" or spec.backend == "mean":
        return {}
    return infer_backend_options(state_dict, spec.backend) or {}


def _sizes_from_weights(state_dict, name, path):
    """Constructor options of a model whose sizes are fitted, not fixed by its name (the
    statistics detector's number of trees and depth), from the tensors' shapes ({} for others)."""
    from adf.models.registry import model_spec

    try:
        builder = model_spec(name).builder
    except KeyError:
        return {}
    infer = getattr(builder, "options_from_state_dict", None)
    if infer is None:
        return {}
    try:
        return infer(state_dict)
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: not a {name} checkpoint: {err}") from None


def load_model(path, model_name=None, device="cpu", dtype=None, input_policy=None, name_hint=None,
               **backbone_overrides):
    """A detector (any registry model) in eval mode with all weights from `path`.

    `model_name` picks the architecture; without it adf metadata names it or
    it is inferred from the weight shapes (logged), `name_hint` choosing among
    architecture-identical names (a released repository's name says which). `backbone_overrides` go to
    SSLClassifier (e.g. test-sized configurations). The model is built on the
    meta device and the weights are assigned on `device` in `dtype` (default
    float32; bfloat16/float16 as SSLClassifier.set_precision leaves them: norms
    and head in fp32), so a bf16 model never exists as an fp32 copy. The
    model's `input_policy` is `input_policy`, else the file's, else the
    registry default of its name.
    """
    from adf.models.classifier import build_on_meta
    from adf.precision import PRECISIONS

    dtype = dtype or torch.float32
    precision = {d: p for p, d in PRECISIONS.items()}.get(dtype)
    if precision is None:
        raise ValueError(f"unsupported dtype {dtype}; choose one of: {', '.join(map(str, PRECISIONS.values()))}")
    ckpt = read_checkpoint(path, dtype=dtype)
    if not ckpt.has_head:
        raise CheckpointError(
            f"{ckpt.path}: holds no detector head (proj_fc or backend): it is a {ckpt.source} backbone; "
            "start post-training from it with adf.checkpoints.load_backbone_into")
    name, overrides = _choose_architecture(ckpt, model_name, backbone_overrides, name_hint)
    if ckpt.backend_options:
        overrides = {**overrides, "backend_options": ckpt.backend_options}
    elif "backend_options" not in overrides:  # a published file: the sizes its shapes give
        options = _published_backend_options(ckpt.state_dict, name)
        if options:
            overrides = {**overrides, "backend_options": options}
    overrides = {**_sizes_from_weights(ckpt.state_dict, name, ckpt.path), **overrides}
    model = build_on_meta(name, **overrides)
    check_fits(model.state_dict(), ckpt.state_dict, ckpt.path, f"model {name!r}")
    check_finite(ckpt.state_dict, ckpt.path)
    weights = {k: v.to(device=device) for k, v in ckpt.state_dict.items()}
    model.load_state_dict(weights, strict=True, assign=True)
    if input_policy or ckpt.input_policy:
        from adf.input_policy import get_policy

        model.input_policy = get_policy(input_policy or ckpt.input_policy).name
    return model.set_precision(precision).eval()


def load_backbone_into(model, path, include_head=False):
    """Copy the backbone weights of `path` into `model` (an SSLClassifier), strictly.

    For starting post-training from a fairseq pre-training `.pt` or fine-tuning
    from an AntiDeepfake / adf checkpoint. The head stays as it is unless
    `include_head`, which requires the file to hold one. Returns the Checkpoint.
    """
    ckpt = read_checkpoint(path)
    # A raw-waveform detector (AASIST, RawNet2) has no separate backbone: all of it is
    # started from the file, e.g. fine-tuning the released AASIST-L.pth.
    include_head = include_head or not hasattr(model, "backbone")
    given = {k: v for k, v in ckpt.state_dict.items()
             if include_head or not (k in HEAD_KEYS or k.startswith(BACKEND_PREFIX))}
    expected = {k: v for k, v in model.state_dict().items()
                if include_head or k.startswith(BACKBONE_PREFIX)}
    what = f"the backbone{' and head' if include_head else ''} of model {model.name!r}"
    check_fits(expected, given, ckpt.path, what)
    check_finite(given, ckpt.path)
    model.load_state_dict(given, strict=False)  # keys checked above; the head may stay
    return ckpt


def save_checkpoint(model, path, extra=None):
    """Write `model` (an SSLClassifier) as an adf checkpoint (safetensors, atomic).

    `extra` is any JSON-serialisable dict stored in the metadata.
    """
    try:
        extra_json = json.dumps(extra or {})
    except TypeError as err:
        raise ValueError(f"extra metadata for {path} is not JSON-serialisable: {err}") from None
    metadata = {"format": FORMAT, "source": "adf", "model_name": model.name, "extra": extra_json,
                "input_policy": getattr(model, "input_policy", None) or "whole"}
    if hasattr(model, "backbone"):
        metadata["backbone_config"] = json.dumps(model.config)
        metadata["backend_options"] = json.dumps(getattr(model, "backend_options", {}))
    else:
        metadata["model_config"] = json.dumps(model.config)
    write_safetensors(model.state_dict(), path, metadata)


def convert_checkpoint(src, dst, trust_pickle=False):
    """Rewrite any supported checkpoint as safetensors with SSLClassifier keys.

    `trust_pickle=True` unpickles `src` with full trust (arbitrary code may
    run): only for files from a trusted source that the safe loader refuses.
    Returns the Checkpoint that was written.
    """
    ckpt = read_checkpoint(src, trust_pickle=trust_pickle)
    metadata = {"source": ckpt.source, "converted_from": Path(src).name}
    if ckpt.model_name is not None:
        metadata.update(format=FORMAT, model_name=ckpt.model_name, extra=json.dumps(ckpt.extra))
        for key in ("backbone_config", "backend_options", "input_policy"):
            value = getattr(ckpt, key)
            if value is not None:
                metadata[key] = value if isinstance(value, str) else json.dumps(value)
    write_safetensors(ckpt.state_dict, dst, metadata)
    return ckpt
