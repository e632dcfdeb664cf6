"""The SSL backbones of the paper, built with torchaudio's `wav2vec2_model`.

Every entry spells out the architecture and the dropouts of the reference
(fairseq) configuration, because torchaudio's named builders use other
dropout defaults. HuBERT and UniSpeech-SAT have the same inference
architecture as wav2vec 2.0, so one builder serves them all; WavLM adds gated
relative position bias and is built with torchaudio's `wavlm_model` (its
configuration is the one with `encoder_num_buckets`).
"""
from __future__ import annotations

import copy

CNN_STANDARD = [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
# Same strides (320x downsampling, 400-sample receptive field) with thin channels: 32 in the
# two high-rate layers, which dominate the cost, 64 in the five low-rate ones (nearly free).
CNN_TINY = [(32, 10, 5), (32, 3, 2)] + [(64, 3, 2)] * 3 + [(64, 2, 2)] * 2

_LARGE = dict(
    extractor_mode="layer_norm", extractor_conv_layer_config=CNN_STANDARD,
    extractor_conv_bias=True, encoder_embed_dim=1024, encoder_projection_dropout=0.0,
    encoder_pos_conv_kernel=128, encoder_pos_conv_groups=16, encoder_num_layers=24,
    encoder_num_heads=16, encoder_attention_dropout=0.0, encoder_ff_interm_features=4096,
    encoder_ff_interm_dropout=0.0, encoder_dropout=0.0, encoder_layer_norm_first=True,
    encoder_layer_drop=0.0,
)
_1B = dict(_LARGE, encoder_embed_dim=1280, encoder_num_layers=48,
           encoder_ff_interm_features=5120, encoder_projection_dropout=0.1)

# name -> (paper name, torchaudio wav2vec2_model kwargs, feature_grad_mult)
BACKBONES = {
    "w2v_small": ("W2V-Small", dict(
        extractor_mode="group_norm", extractor_conv_layer_config=CNN_STANDARD,
        extractor_conv_bias=False, encoder_embed_dim=768, encoder_projection_dropout=0.1,
        encoder_pos_conv_kernel=128, encoder_pos_conv_groups=16, encoder_num_layers=12,
        encoder_num_heads=12, encoder_attention_dropout=0.1, encoder_ff_interm_features=3072,
        encoder_ff_interm_dropout=0.0, encoder_dropout=0.1, encoder_layer_norm_first=False,
        encoder_layer_drop=0.05), 0.1),
    "w2v_large": ("W2V-Large", _LARGE, 1.0),
    "mms_300m": ("MMS-300M", _LARGE, 1.0),
    "mms_1b": ("MMS-1B", _1B, 1.0),
    "xlsr_1b": ("XLS-R-1B", _1B, 1.0),
    "xlsr_2b": ("XLS-R-2B", dict(_1B, encoder_embed_dim=1920, encoder_ff_interm_features=7680), 1.0),
    "hubert_xl": ("HuBERT-XL", dict(_1B, extractor_conv_bias=False, encoder_projection_dropout=0.0), 1.0),
    # The backbone of the comparison systems (SSL_Anti-spoofing, SLS, TCM, XLSR-Mamba):
    # the same network as w2v_large / mms_300m.
    "xlsr_300m": ("XLS-R-300M", _LARGE, 1.0),
    # UniSpeech-SAT Large and WavLM Large: the Large layout without conv bias
    # (microsoft/unispeech-sat-large, microsoft/wavlm-large); dropouts as the other Large models.
    "unispeech_sat": ("UniSpeech-SAT-L", dict(_LARGE, extractor_conv_bias=False), 1.0),
    "wavlm_large": ("WavLM-Large", dict(_LARGE, extractor_conv_bias=False, encoder_num_buckets=320,
                                        encoder_max_distance=800), 1.0),
    # For tests and the example corpus: trains in minutes on a laptop CPU.
    "tiny": ("Tiny (tests)", dict(
        extractor_mode="layer_norm", extractor_conv_layer_config=CNN_TINY,
        extractor_conv_bias=True, encoder_embed_dim=128, encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=16, encoder_pos_conv_groups=4, encoder_num_layers=4,
        encoder_num_heads=4, encoder_attention_dropout=0.0, encoder_ff_interm_features=256,
        encoder_ff_interm_dropout=0.0, encoder_dropout=0.0, encoder_layer_norm_first=True,
        encoder_layer_drop=0.0), 1.0),
}

MODEL_NAMES = list(BACKBONES)


def backbone_config(name, **overrides):
    """The torchaudio kwargs of backbone `name`, with `overrides` applied (e.g. dropouts)."""
    if name not in BACKBONES:
        raise KeyError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}")
    cfg = copy.deepcopy(BACKBONES[name][1])
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise KeyError(f"unknown backbone option(s) for {name}: {', '.join(sorted(unknown))}")
    cfg.update(overrides)
    return cfg


def is_wavlm(cfg):
    """Whether configuration `cfg` is WavLM's (relative position buckets)."""
    return "encoder_num_buckets" in cfg


def build_backbone(name, **overrides):
    """A randomly initialised torchaudio `Wav2Vec2Model` with the reference architecture."""
    from torchaudio.models import wav2vec2_model, wavlm_model

    cfg = backbone_config(name, **overrides)
    return (wavlm_model if is_wavlm(cfg) else wav2vec2_model)(aux_num_out=None, **cfg)


def feature_grad_mult(name):
    """Gradient scale on the CNN output (fairseq `feature_grad_mult`): 0.1 for w2v_small only."""
    return BACKBONES[name][2]
