"""Checkpoints: read AntiDeepfake, Hugging Face, fairseq and adf files strictly and safely.

Supported files (recognised by content, not extension):

* AntiDeepfake `.ckpt`: torch.save of a state dict, fairseq model under
  `m_ssl.model.` plus the head `proj_fc.*`;
* Hugging Face `model.safetensors` of AntiDeepfake: the same keys;
* Hugging Face transformers models (Wav2Vec2, HuBERT, UniSpeech-SAT, WavLM:
  bare or under their pre-training prefix), backbone only;
* fairseq pre-training `.pt`: `{"model": state dict, "cfg" or "args": ...}`,
  backbone only (the head stays random: a start for post-training);
* adf checkpoints (`save_checkpoint`): safetensors with SSLClassifier keys and
  metadata naming the model; SpeechBrain's torch.save of an SSLClassifier
  state dict is read too.

Pickled files are read with torch.load(weights_only=True) and a small
allow-list (files.SAFE_GLOBALS); others are refused with a pointer to
`tools/convert_checkpoint.py --trust-pickle`. Without a model name the
architecture is inferred from the weight shapes (architecture.py).
"""
from adf.checkpoints.architecture import equivalent_names, infer_model_name
from adf.checkpoints.files import CheckpointError
from adf.checkpoints.loading import (Checkpoint, check_fits, convert_checkpoint, load_backbone_into,
                                     load_model, read_checkpoint, read_state_dict, save_checkpoint)

__all__ = [
    "CheckpointError", "Checkpoint", "check_fits", "convert_checkpoint", "equivalent_names",
    "infer_model_name", "load_backbone_into", "load_model", "read_checkpoint", "read_state_dict",
    "save_checkpoint",
]
