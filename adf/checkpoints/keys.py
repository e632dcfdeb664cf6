"""Key names: fairseq / AntiDeepfake checkpoints -> adf's SSLClassifier.

adf's detector keys are `backbone.<torchaudio Wav2Vec2Model key>` plus the head
`proj_fc.weight` / `proj_fc.bias`. AntiDeepfake checkpoints hold the fairseq
model under `m_ssl.model.` plus the same head; fairseq pre-training files hold
the bare fairseq model. A pure rename maps fairseq onto torchaudio (no fairseq
needed): the table below, matched against the whole key. The only other
difference is the positional convolution's weight norm, which fairseq stores
in the old style (`weight_g` / `weight_v`) and torchaudio as a parametrization
(`parametrizations.weight.original0` / `original1`, same shapes).

Keys that only pre-training uses are dropped by name; any other key that the
table does not know is kept under its own name, so that strict loading reports
it as unexpected instead of silently ignoring it.

Other published layouts:

* SSL_Anti-spoofing ("XLS-R + AASIST") and its descendants: the fairseq model
  under `ssl_model.model.` and the back-end's parameters at the top level;
  they become `backbone.*` (the table above) and `backend.*` (unchanged
  names: adf's back-ends keep the published parameter names);
* the raw-waveform systems (clovaai/aasist's AASIST.pth, the ASVspoof 2021
  RawNet2): adf's AASIST and RawNet2 use their parameter names, so their
  state dicts are read as they are ("waveform").

A `module.` prefix on every key (saved from torch's DataParallel) is removed.
"""
from __future__ import annotations

import re

ANTIDEEPFAKE_PREFIX = "m_ssl.model."
SSL_ANTI_SPOOFING_PREFIX = "ssl_model.model."
BACKBONE_PREFIX = "backbone."
BACKEND_PREFIX = "backend."
DATA_PARALLEL_PREFIX = "module."
HEAD_KEYS = ("proj_fc.weight", "proj_fc.bias")

# Pre-training-only parameters of fairseq wav2vec 2.0 (mask embedding, quantiser,
# contrastive projections) and HuBERT (label embeddings, final projection).
PRETRAINING_ONLY = re.compile(r"mask_emb|label_embs_concat|(quantizer|project_q|final_proj)\..+")

_CONV = "feature_extractor.conv_layers"
_LAYER = "encoder.transformer.layers"
_FAIRSEQ_TO_TORCHAUDIO = [
    (rf"{_CONV}\.(\d+)\.0\.(weight|bias)", rf"{_CONV}.\1.conv.\2"),
    (rf"{_CONV}\.(\d+)\.2\.1\.(weight|bias)", rf"{_CONV}.\1.layer_norm.\2"),  # layer_norm mode
    (rf"{_CONV}\.0\.2\.(weight|bias)", rf"{_CONV}.0.layer_norm.\1"),  # group_norm mode
    (r"layer_norm\.(weight|bias)", r"encoder.feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"encoder.feature_projection.projection.\1"),
    (r"encoder\.pos_conv\.0\.bias", "encoder.transformer.pos_conv_embed.conv.bias"),
    (r"encoder\.pos_conv\.0\.weight_g",
     "encoder.transformer.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.0\.weight_v",
     "encoder.transformer.pos_conv_embed.conv.parametrizations.weight.original1"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.transformer.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)",
     rf"{_LAYER}.\1.attention.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", rf"{_LAYER}.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)", rf"{_LAYER}.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.fc2\.(weight|bias)", rf"{_LAYER}.\1.feed_forward.output_dense.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", rf"{_LAYER}.\1.final_layer_norm.\2"),
]
_RULES = [(re.compile(p), r) for p, r in _FAIRSEQ_TO_TORCHAUDIO]


def fairseq_to_torchaudio(key):
    """The torchaudio name of fairseq key `key`, or None when the table does not know it."""
    for pattern, replacement in _RULES:
        if pattern.fullmatch(key):
            return pattern.sub(replacement, key)
    return None


def _from_fairseq(tensors, prefix):
    """Rename the fairseq keys under `prefix`; keep the head and unknown keys as they are."""
    out = {}
    for key, value in tensors.items():
        if key in HEAD_KEYS:
            out[key] = value
            continue
        inner = key[len(prefix):] if key.startswith(prefix) else None
        if inner is not None and PRETRAINING_ONLY.fullmatch(inner):
            continue
        name = fairseq_to_torchaudio(inner) if inner is not None else None
        out[BACKBONE_PREFIX + name if name else key] = value
    return out


def _strip_data_parallel(tensors):
    if tensors and all(k.startswith(DATA_PARALLEL_PREFIX) for k in tensors):
        return {k[len(DATA_PARALLEL_PREFIX):]: v for k, v in tensors.items()}
    return tensors


def key_style(tensors):
    """'adf' (adf keys), 'antideepfake' (`m_ssl.model.` prefix), 'ssl_anti_spoofing'
    (`ssl_model.model.` prefix), 'waveform' (no SSL backbone keys: AASIST, RawNet2)
    or 'fairseq' (bare)."""
    tensors = _strip_data_parallel(tensors)
    if any(k.startswith(BACKBONE_PREFIX) for k in tensors):
        return "adf"
    if any(k.startswith(ANTIDEEPFAKE_PREFIX) for k in tensors):
        return "antideepfake"
    if any(k.startswith(SSL_ANTI_SPOOFING_PREFIX) for k in tensors):
        return "ssl_anti_spoofing"
    if not any(fairseq_to_torchaudio(k) or PRETRAINING_ONLY.fullmatch(k) for k in tensors):
        return "waveform"
    return "fairseq"


def _from_ssl_anti_spoofing(tensors):
    """Backbone under `ssl_model.model.` -> `backbone.*`; everything else is the back-end's."""
    out = {}
    for key, value in tensors.items():
        if key.startswith(SSL_ANTI_SPOOFING_PREFIX):
            out.update(_from_fairseq({key: value}, SSL_ANTI_SPOOFING_PREFIX))
        else:
            out[BACKEND_PREFIX + key] = value
    return out


def to_adf_keys(tensors):
    """The state dict renamed to adf's keys (see the module docstring)."""
    tensors = _strip_data_parallel(tensors)
    style = key_style(tensors)
    if style in ("adf", "waveform"):
        return dict(tensors)
    if style == "ssl_anti_spoofing":
        return _from_ssl_anti_spoofing(tensors)
    return _from_fairseq(tensors, ANTIDEEPFAKE_PREFIX if style == "antideepfake" else "")
