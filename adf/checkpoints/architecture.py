"""Which named backbone a state dict belongs to, from the shapes of its weights.

Shapes give the CNN (channels, kernel sizes, conv bias, group-norm vs
layer-norm extractor), the embedding size, the layer count, the FFN size and
the positional convolution, and WavLM's relative position parameters tell its
attention from wav2vec 2.0's; they do not give the head count, the stride or
where the layer norms sit, which the named configuration supplies. Some names
share one architecture (w2v_large = mms_300m, mms_1b = xlsr_1b): such a state
dict resolves to the first of them in BACKBONES, which builds the identical
network; `equivalent_names` lists the others.
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
    """Names in BACKBONES whose architecture is identical to `name`'s (itself included)."""
    sig = signature_of_config(BACKBONES[name][1])
    return [n for n, (_, cfg, _) in BACKBONES.items() if signature_of_config(cfg) == sig]


def infer_model_name(state_dict):
    """The BACKBONES name whose architecture matches the shapes of `state_dict`.

    `state_dict` uses SSLClassifier keys (see `adf.checkpoints.read_state_dict`).
    Architecture-identical names resolve to the first one (module docstring).
    Raises CheckpointError when no name matches.
    """
    sig = signature_of_state_dict(state_dict)
    for name, (_, cfg, _) in BACKBONES.items():
        if signature_of_config(cfg) == sig:
            return name
    shown = ", ".join(f"{k}={v}" for k, v in sig.items() if k != "conv")
    raise CheckpointError(f"the weights match no known model ({shown}); "
                          f"known models: {', '.join(BACKBONES)}")
