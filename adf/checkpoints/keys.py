"""Key names: fairseq / AntiDeepfake checkpoints -> adf's SSLClassifier.

adf's detector keys are `backbone.<torchaudio Wav2Vec2Model key>` plus the head
`proj_fc.weight` / `proj_fc.bias`. AntiDeepfake checkpoints hold the fairseq
model under `m_ssl.model.` plus the same head; fairseq pre-training files hold
the bare fairseq model. A pure rename maps fairseq onto torchaudio (no fairseq
needed): the table below, matched against the whole key. The only other
difference is the positional convolution's weight norm, which fairseq stores
in the old style (`weight_g` / `weight_v`) and torchaudio as a parametrization
(`parametrizations.weight.original0` / `original1`, same shapes).

Hugging Face transformers checkpoints (Wav2Vec2, HuBERT, UniSpeech-SAT,
WavLM; bare or under their model prefix `wav2vec2.` ...) differ from
torchaudio by prefixes only, except WavLM's attention, whose separate q/k/v
projections torchaudio keeps as one `in_proj_weight` / `in_proj_bias` in
q, k, v order.

Keys that only pre-training uses are dropped by name; any other key that the
table does not know is kept under its own name, so that strict loading reports
it as unexpected instead of silently ignoring it.

Other published layouts:

* SSL_Anti-spoofing ("XLS-R + AASIST") and its descendants: the fairseq model
  under `ssl_model.model.` and the back-end's parameters at the top level;
  they become `backbone.*` (the table above) and `backend.*` (the published
  names, or the back-end's own through its `published_keys`: see
  adf.checkpoints.published);
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


# transformers: the base model's attribute in its *ForPreTraining / *ForCTC ... classes
TRANSFORMERS_PREFIXES = ("wav2vec2.", "hubert.", "unispeech_sat.", "wavlm.")
# pre-training-only parameters of transformers' Wav2Vec2/UniSpeech-SAT/HuBERT/WavLM
TRANSFORMERS_PRETRAINING_ONLY = re.compile(
    r"masked_spec_embed|label_embeddings_concat|dropout_features|"
    r"(quantizer|project_q|project_hid|speaker_proj|layer_norm_for_extract)\..+")
_TRANSFORMERS_TO_TORCHAUDIO = [
    (r"(feature_extractor\.conv_layers\.\d+\.(conv|layer_norm)\.(weight|bias))", r"\1"),
    (r"feature_projection\.(layer_norm|projection)\.(weight|bias)", r"encoder.feature_projection.\1.\2"),
    (r"encoder\.pos_conv_embed\.conv\.bias", "encoder.transformer.pos_conv_embed.conv.bias"),
    (r"encoder\.pos_conv_embed\.conv\.(weight_g|parametrizations\.weight\.original0)",
     "encoder.transformer.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv_embed\.conv\.(weight_v|parametrizations\.weight\.original1)",
     "encoder.transformer.pos_conv_embed.conv.parametrizations.weight.original1"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.transformer.layer_norm.\1"),
    (r"encoder\.layers\.(\d+)\.(layer_norm|final_layer_norm|feed_forward\.\w+|attention\.\w+)\.(weight|bias)",
     rf"{_LAYER}.\1.\2.\3"),
    (r"encoder\.layers\.(\d+)\.attention\.gru_rel_pos_const", rf"{_LAYER}.\1.attention.gru_rel_pos_const"),
]
_TRANSFORMERS_RULES = [(re.compile(p), r) for p, r in _TRANSFORMERS_TO_TORCHAUDIO]
_WAVLM_QKV = re.compile(rf"{re.escape(_LAYER)}\.(\d+)\.attention\.(q|k|v)_proj\.(weight|bias)")


def _transformers_inner(key):
    for prefix in TRANSFORMERS_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _from_transformers(tensors):
    """Rename transformers keys; fuse WavLM's q/k/v (see the module docstring)."""
    import torch

    out = {}
    for key, value in tensors.items():
        if key in HEAD_KEYS:
            out[key] = value
            continue
        inner = _transformers_inner(key)
        if TRANSFORMERS_PRETRAINING_ONLY.fullmatch(inner):
            continue
        name = next((p.sub(r, inner) for p, r in _TRANSFORMERS_RULES if p.fullmatch(inner)), None)
        out[BACKBONE_PREFIX + name if name else key] = value
    if not any(k.endswith("attention.gru_rel_pos_const") for k in out):
        return out
    # WavLM: torchaudio's attention holds an nn.MultiheadAttention; its out_proj sits inside it
    fused, parts = {}, {}
    for key, value in out.items():
        m = _WAVLM_QKV.fullmatch(key[len(BACKBONE_PREFIX):]) if key.startswith(BACKBONE_PREFIX) else None
        if m:
            parts.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = (key, value)
        else:
            fused[key.replace(".attention.out_proj.", ".attention.attention.out_proj.")] = value
    for (layer, param), qkv in parts.items():
        if set(qkv) != {"q", "k", "v"}:  # incomplete: keep the stored names, strict loading reports them
            fused.update(dict(qkv.values()))
            continue
        target = f"{BACKBONE_PREFIX}{_LAYER}.{layer}.attention.attention.in_proj_{param}"
        fused[target] = torch.cat([qkv[p][1] for p in "qkv"], dim=0)
    return fused


def _strip_data_parallel(tensors):
    if tensors and all(k.startswith(DATA_PARALLEL_PREFIX) for k in tensors):
        return {k[len(DATA_PARALLEL_PREFIX):]: v for k, v in tensors.items()}
    return tensors


def key_style(tensors):
    """'adf' (adf keys), 'antideepfake' (`m_ssl.model.` prefix), 'ssl_anti_spoofing'
    (`ssl_model.model.` prefix), 'transformers' (Hugging Face transformers model),
    'waveform' (no SSL backbone keys: AASIST, RawNet2) or 'fairseq' (bare)."""
    tensors = _strip_data_parallel(tensors)
    if any(k.startswith(BACKBONE_PREFIX) for k in tensors):
        return "adf"
    if any(k.startswith(ANTIDEEPFAKE_PREFIX) for k in tensors):
        return "antideepfake"
    if any(k.startswith(SSL_ANTI_SPOOFING_PREFIX) for k in tensors):
        return "ssl_anti_spoofing"
    if any(_transformers_inner(k).startswith("feature_projection.") for k in tensors):
        return "transformers"
    if not any(fairseq_to_torchaudio(k) or PRETRAINING_ONLY.fullmatch(k) for k in tensors):
        return "waveform"
    return "fairseq"


def _from_ssl_anti_spoofing(tensors):
    """Backbone under `ssl_model.model.` -> `backbone.*`; everything else is the back-end's,
    under adf's back-end names (adf.checkpoints.published)."""
    from adf.checkpoints.published import published_head_to_adf

    out, head = {}, {}
    for key, value in tensors.items():
        if key.startswith(SSL_ANTI_SPOOFING_PREFIX):
            out.update(_from_fairseq({key: value}, SSL_ANTI_SPOOFING_PREFIX))
        else:
            head[key] = value
    out.update({BACKEND_PREFIX + k: v for k, v in published_head_to_adf(head).items()})
    return out


def to_adf_keys(tensors):
    """The state dict renamed to adf's keys (see the module docstring)."""
    tensors = _strip_data_parallel(tensors)
    style = key_style(tensors)
    if style in ("adf", "waveform"):
        return dict(tensors)
    if style == "ssl_anti_spoofing":
        return _from_ssl_anti_spoofing(tensors)
    if style == "transformers":
        return _from_transformers(tensors)
    return _from_fairseq(tensors, ANTIDEEPFAKE_PREFIX if style == "antideepfake" else "")
