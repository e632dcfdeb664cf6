"""Which named backbone a state dict belongs to, from the shapes of its weights.

Shapes give the CNN (channels, kernel sizes, conv bias, group-norm vs
layer-norm extractor), the embedding size, the layer count, the FFN size and
the positional convolution, and WavLM's relative position parameters tell its
attention from wav2vec 2.0's; they do not give the head count, the stride or
where the layer norms sit, which the named configuration supplies. Some names
share one architecture (w2v_large = mms_300m, mms_1b = xlsr_1b): such a state
dict resolves to the first of them in BACKBONES, which builds the identical
network; `equivalent_names` lists the others.

For the other models of the registry the back-end (or, for raw-waveform
systems, the whole model) is recognised by comparing the keys and shapes with
each candidate built on the meta device: `<backbone>_<backend>` for a state
dict with `backend.*` keys, `aasist` / `aasist_l` / `rawnet2` for one
without a backbone. A back-end class with `config_from_state_dict` is built
with the options its weights' shapes give (`infer_backend_options`), so a
published checkpoint of another size than the default is recognised and
loaded too.
"""
from __future__ import annotations

import re

from adf.checkpoints.files import CheckpointError
from adf.models.backbones import BACKBONES, is_wavlm

_FE = "backbone.feature_extractor.conv_layers"
_TR = "backbone.encoder.transformer"
_POS_V = f"{_TR}.pos_conv_embed.conv.parametrizations.weight.original1"
_PROJ = "backbone.encoder.feature_projection.projection.weight"
_FFN = f"{_TR}.layers.0.feed_forward.intermediate_dense.weight"


def signature_of_config(cfg):
    """The shape-visible part of a torchaudio wav2vec2_model configuration."""
    return dict(
        extractor_mode=cfg["extractor_mode"],
        conv=tuple((c, k) for c, k, _ in cfg["extractor_conv_layer_config"]),
        conv_bias=cfg["extractor_conv_bias"],
        embed_dim=cfg["encoder_embed_dim"],
        layers=cfg["encoder_num_layers"],
        ffn=cfg["encoder_ff_interm_features"],
        pos_conv=(cfg["encoder_pos_conv_kernel"], cfg["encoder_pos_conv_groups"]),
        attention="wavlm" if is_wavlm(cfg) else "wav2vec2",
    )


def signature_of_state_dict(sd):
    """The same fields measured on a state dict with SSLClassifier keys."""
    need = [f"{_FE}.0.conv.weight", _PROJ, _POS_V, _FFN]
    missing = [k for k in need if k not in sd]
    if missing:
        raise CheckpointError(f"cannot tell the architecture: missing {', '.join(missing)}")
    conv_ids = sorted(int(m.group(1)) for k in sd
                      if (m := re.fullmatch(rf"{re.escape(_FE)}\.(\d+)\.conv\.weight", k)))
    conv = tuple((int(sd[f"{_FE}.{i}.conv.weight"].shape[0]),
                  int(sd[f"{_FE}.{i}.conv.weight"].shape[2])) for i in conv_ids)
    normed = [f"{_FE}.{i}.layer_norm.weight" in sd for i in conv_ids]
    if all(normed):
        mode = "layer_norm"
    elif normed[0] and not any(normed[1:]):
        mode = "group_norm"
    else:
        mode = "unknown (normalisation on conv layers " + \
            ", ".join(str(i) for i, n in zip(conv_ids, normed) if n) + ")"
    layers = {int(m.group(1)) for k in sd if (m := re.match(rf"{re.escape(_TR)}\.layers\.(\d+)\.", k))}
    embed_dim = int(sd[_PROJ].shape[0])
    pos = sd[_POS_V].shape
    return dict(
        extractor_mode=mode,
        conv=conv,
        conv_bias=f"{_FE}.0.conv.bias" in sd,
        embed_dim=embed_dim,
        layers=len(layers),
        ffn=int(sd[_FFN].shape[0]),
        pos_conv=(int(pos[2]), embed_dim // int(pos[1])),
        attention="wavlm" if f"{_TR}.layers.0.attention.gru_rel_pos_const" in sd else "wav2vec2",
    )


def equivalent_names(name):
    """Registry names whose architecture is identical to `name`'s (itself included):
    the same back-end on architecture-identical backbones."""
    from adf.models.registry import model_spec

    spec = model_spec(name)
    if spec.kind != "ssl":
        return [name]
    sig = signature_of_config(BACKBONES[spec.backbone][1])
    suffix = "" if spec.backend == "mean" else f"_{spec.backend}"
    return [n + suffix for n, (_, cfg, _) in BACKBONES.items() if signature_of_config(cfg) == sig]


def _shapes(state_dict):
    return {k: tuple(v.shape) for k, v in state_dict.items()}


def _infer_waveform(state_dict):
    """The raw-waveform model whose keys and shapes are exactly those of `state_dict`."""
    from adf.models.classifier import build_on_meta
    from adf.models.registry import model_specs

    names = [n for n, spec in model_specs().items() if spec.kind == "waveform"]
    given = _shapes(state_dict)
    for name in names:
        if _shapes(build_on_meta(name).state_dict()) == given:
            return name
    raise CheckpointError(f"the weights match no known model: no SSL backbone keys, and neither "
                          f"the keys nor the shapes of {', '.join(names)}")


def _infer_backend(state_dict, backbone):
    """The back-end name ("mean" when only the head `proj_fc` or nothing follows the backbone)."""
    import torch

    from adf.checkpoints.keys import BACKBONE_PREFIX, BACKEND_PREFIX
    from adf.models.backends import build_backend, backend_names

    head = {k: v for k, v in state_dict.items() if not k.startswith(BACKBONE_PREFIX)}
    if not any(k.startswith(BACKEND_PREFIX) for k in head):
        return "mean"
    cfg = BACKBONES[backbone][1]
    given = _shapes(head)
    names = [n for n in backend_names() if n != "mean"]
    for name in names:
        options = infer_backend_options(state_dict, name)
        if options is None:
            continue
        with torch.device("meta"):
            module = build_backend(name, cfg["encoder_embed_dim"], cfg["encoder_num_layers"], **options)
        if _shapes({BACKEND_PREFIX + k: v for k, v in module.state_dict().items()}) == given:
            return name
    raise CheckpointError(f"the back-end weights (backend.*) match none of the back-ends "
                          f"{', '.join(names)} on {backbone}; name the model with --model")


def infer_backend_options(state_dict, backend):
    """The constructor options of back-end `backend` that its weights in `state_dict`
    (adf keys) imply: {} for a back-end without `config_from_state_dict` (its
    defaults), None when the weights cannot be of that back-end."""
    from adf.checkpoints.keys import BACKEND_PREFIX
    from adf.models.backends import BACKENDS, backend_names

    backend_names()  # registers the library's back-ends
    infer = getattr(BACKENDS[backend], "config_from_state_dict", None)
    if infer is None:
        return {}
    head = {k[len(BACKEND_PREFIX):]: v for k, v in state_dict.items() if k.startswith(BACKEND_PREFIX)}
    try:
        options = infer(head)
    except (KeyError, ValueError, IndexError):
        return None
    options.pop("embed_dim", None)
    return options


def infer_model_name(state_dict):
    """The registry name whose architecture matches the shapes of `state_dict`.

    `state_dict` uses adf keys (see `adf.checkpoints.read_state_dict`): the
    backbone from the shapes of `backbone.*`, then the back-end; without
    backbone keys, a raw-waveform system. Architecture-identical backbones
    resolve to the first one (module docstring). Raises CheckpointError when
    no name matches.
    """
    if not any(k.startswith("backbone.") for k in state_dict):
        return _infer_waveform(state_dict)
    sig = signature_of_state_dict(state_dict)
    for name, (_, cfg, _) in BACKBONES.items():
        if signature_of_config(cfg) == sig:
            backend = _infer_backend(state_dict, name)
            return name if backend == "mean" else f"{name}_{backend}"
    shown = ", ".join(f"{k}={v}" for k, v in sig.items() if k != "conv")
    raise CheckpointError(f"the weights match no known model ({shown}); "
                          f"known models: {', '.join(BACKBONES)}")
