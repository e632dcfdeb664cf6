"""The AntiDeepfake models its authors published on the Hugging Face Hub.

Each repository holds one `model.safetensors` (the fairseq backbone under
`m_ssl.model.` plus the `proj_fc` head; adf.checkpoints reads it), so any of
them works as `--ckpt ORG/NAME` or `Detector.from_pretrained("ORG/NAME")`.
Every backbone comes twice: post-trained with RawBoost data augmentation,
and without it (the `-nda` repositories). Names as listed in the authors'
repository (github.com/nii-yamagishilab/AntiDeepfake, README model table)
and on huggingface.co/nii-yamagishilab.
"""
from __future__ import annotations

from dataclasses import dataclass

ORGANISATION = "nii-yamagishilab"
# adf model name -> the repository name's stem (before "-anti-deepfake")
_STEMS = {
    "w2v_small": "wav2vec-small",
    "w2v_large": "wav2vec-large",
    "mms_300m": "mms-300m",
    "mms_1b": "mms-1b",
    "xlsr_1b": "xls-r-1b",
    "xlsr_2b": "xls-r-2b",
    "hubert_xl": "hubert-xlarge",
}


@dataclass(frozen=True)
class ReleasedModel:
    """One published repository: `repo` (ORG/NAME), the adf `model` it loads as, and
    whether it was post-trained with RawBoost augmentation."""

    repo: str
    model: str
    augmented: bool


def released_models():
    """Every published AntiDeepfake repository, augmented first, smallest backbone first."""
    return [ReleasedModel(f"{ORGANISATION}/{stem}-anti-deepfake{'' if augmented else '-nda'}", model, augmented)
            for augmented in (True, False) for model, stem in _STEMS.items()]


def released_model_name(spec):
    """The adf model name of the published repository `spec` (ORG/NAME[@REVISION]) names,
    or None (another name, or a local path). Their files do not say which of two
    architecture-identical backbones they hold (MMS-300M or W2V-Large, MMS-1B or
    XLS-R-1B), and the shapes cannot tell; the repository name can."""
    import os

    from adf.checkpoints.hub import parse_hub_name

    name = None if os.path.lexists(spec) else parse_hub_name(spec)
    if name is None:
        return None
    return next((m.model for m in released_models() if m.repo.lower() == name[0].lower()), None)
