"""Independent reference models for the checkpoint tests: Hugging Face transformers.

`hf_to_fairseq` renames a transformers Wav2Vec2Model / HubertModel state dict to
fairseq's names, written from the two libraries' module layouts and
independently of adf.checkpoints.keys, so that a test loading these weights
through adf checks adf's fairseq -> torchaudio rename against a second
implementation of the network.
"""
from __future__ import annotations

import torch
from transformers import (HubertConfig, HubertModel, UniSpeechSatConfig, UniSpeechSatModel, Wav2Vec2Config,
                          Wav2Vec2Model, WavLMConfig, WavLMModel)

TINY_CNN = [(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2

# name -> (transformers class, config class, norm, conv bias, pre-LN, adf model it mimics)
VARIANTS = {
    "w2v_small_like": (Wav2Vec2Model, Wav2Vec2Config, "group", False, False, "w2v_small"),
    "w2v_large_like": (Wav2Vec2Model, Wav2Vec2Config, "layer", True, True, "w2v_large"),
    "hubert_xl_like": (HubertModel, HubertConfig, "layer", False, True, "hubert_xl"),
}
# transformers-layout files only (no fairseq naming in hf_to_fairseq for them)
HF_ONLY_VARIANTS = {
    "xlsr_300m_like": (Wav2Vec2Model, Wav2Vec2Config, "layer", True, True, "xlsr_300m"),
    "unispeech_sat_like": (UniSpeechSatModel, UniSpeechSatConfig, "layer", False, True, "unispeech_sat"),
    "wavlm_large_like": (WavLMModel, WavLMConfig, "layer", False, True, "wavlm_large"),
}
# adf model name -> transformers (model, config) classes of the same architecture
FAMILIES = {"hubert_xl": (HubertModel, HubertConfig), "unispeech_sat": (UniSpeechSatModel, UniSpeechSatConfig),
            "wavlm_large": (WavLMModel, WavLMConfig)}


def hf_config(config_cls, norm, conv_bias, pre_ln, cnn, dim, layers, heads, ffn, pos_kernel,
              pos_groups):
    return config_cls(
        hidden_size=dim, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=ffn, hidden_act="gelu", feat_extract_activation="gelu",
        feat_extract_norm=norm, conv_bias=conv_bias, do_stable_layer_norm=pre_ln,
        conv_dim=[c for c, _, _ in cnn], conv_kernel=[k for _, k, _ in cnn],
        conv_stride=[s for _, _, s in cnn], num_conv_pos_embeddings=pos_kernel,
        num_conv_pos_embedding_groups=pos_groups, layer_norm_eps=1e-5,
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        feat_proj_dropout=0.0, layerdrop=0.0, apply_spec_augment=True, mask_time_prob=0.05,
    )


def small_pair(variant, seed=0):
    """(transformers model with randomised weights in eval mode, adf model name, adf overrides)."""
    model_cls, config_cls, norm, bias, pre_ln, adf_name = {**VARIANTS, **HF_ONLY_VARIANTS}[variant]
    dims = dict(dim=32, layers=2, heads=2, ffn=64, pos_kernel=16, pos_groups=4)
    torch.manual_seed(seed)
    model = model_cls(hf_config(config_cls, norm, bias, pre_ln, TINY_CNN, **dims))
    # transformers' own attention arithmetic rather than the SDPA kernel torchaudio also
    # calls, so that the comparison does not share a code path beyond basic layers.
    model.set_attn_implementation("eager")
    with torch.no_grad():  # perturb everything, so that swapped LN weight/bias etc. show
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    overrides = dict(
        extractor_conv_layer_config=TINY_CNN, encoder_embed_dim=dims["dim"],
        encoder_num_layers=dims["layers"], encoder_num_heads=dims["heads"],
        encoder_ff_interm_features=dims["ffn"], encoder_pos_conv_kernel=dims["pos_kernel"],
        encoder_pos_conv_groups=dims["pos_groups"], encoder_projection_dropout=0.0,
        encoder_attention_dropout=0.0, encoder_dropout=0.0, encoder_layer_drop=0.0,
    )
    return model.eval(), adf_name, overrides


def full_size_on_meta(adf_cfg, name):
    """A transformers model with the architecture of adf model `name` configured as `adf_cfg`,
    on the meta device."""
    model_cls, config_cls = FAMILIES.get(name, (Wav2Vec2Model, Wav2Vec2Config))
    cfg = hf_config(
        config_cls, "group" if adf_cfg["extractor_mode"] == "group_norm" else "layer",
        adf_cfg["extractor_conv_bias"], adf_cfg["encoder_layer_norm_first"],
        adf_cfg["extractor_conv_layer_config"], adf_cfg["encoder_embed_dim"],
        adf_cfg["encoder_num_layers"], adf_cfg["encoder_num_heads"],
        adf_cfg["encoder_ff_interm_features"], adf_cfg["encoder_pos_conv_kernel"],
        adf_cfg["encoder_pos_conv_groups"])
    with torch.device("meta"):
        return model_cls(cfg)


def hf_to_fairseq(hf_state_dict, group_norm):
    """transformers Wav2Vec2/HuBERT keys -> fairseq Wav2Vec2Model/HubertModel keys."""
    pos_conv = {"bias": "bias", "weight_g": "weight_g", "weight_v": "weight_v",
                "parametrizations.weight.original0": "weight_g",
                "parametrizations.weight.original1": "weight_v"}
    out = {}
    for key, value in hf_state_dict.items():
        parts = key.split(".")
        if key == "masked_spec_embed":
            new = "mask_emb"
        elif key.startswith("feature_extractor.conv_layers."):
            i, module, param = parts[2], parts[3], parts[4]
            if module == "conv":  # fairseq block: Sequential(conv, dropout, norm, GELU)
                new = f"feature_extractor.conv_layers.{i}.0.{param}"
            elif group_norm:
                new = f"feature_extractor.conv_layers.{i}.2.{param}"
            else:  # Sequential(TransposeLast, LayerNorm, TransposeLast)
                new = f"feature_extractor.conv_layers.{i}.2.1.{param}"
        elif key.startswith("feature_projection."):
            new = {"layer_norm": "layer_norm", "projection": "post_extract_proj"}[parts[1]] + "." + parts[2]
        elif key.startswith("encoder.pos_conv_embed.conv."):
            new = "encoder.pos_conv.0." + pos_conv[".".join(parts[3:])]
        elif key.startswith("encoder.layer_norm."):
            new = key
        elif key.startswith("encoder.layers."):
            i, sub = parts[2], ".".join(parts[3:])
            if sub.startswith("layer_norm."):
                sub = "self_attn_layer_norm." + parts[-1]
            sub = (sub.replace("attention.", "self_attn.")
                   .replace("feed_forward.intermediate_dense", "fc1")
                   .replace("feed_forward.output_dense", "fc2"))
            new = f"encoder.layers.{i}.{sub}"
        else:
            raise KeyError(f"no fairseq name for transformers key {key}")
        out[new] = value
    return out


def antideepfake_state_dict(fairseq_sd, head):
    """The layout of the released AntiDeepfake checkpoints: `m_ssl.model.` + proj_fc."""
    sd = {f"m_ssl.model.{k}": v for k, v in fairseq_sd.items()}
    sd["proj_fc.weight"], sd["proj_fc.bias"] = head.weight.detach(), head.bias.detach()
    return sd
