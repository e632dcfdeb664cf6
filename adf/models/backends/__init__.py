"""Back-ends: what turns an SSL backbone's frame features into [fake, real] logits.

A detector on an SSL backbone is `SSLClassifier(backbone, backend=NAME)`; the
registry (adf.models.registry) names each combination `<backbone>_<NAME>`
(`<backbone>` alone for the mean back-end). Adding a back-end = one class
registered with `register_backend` (one small module per back-end in this
package: sls, tcm, mamba, vib; aasist in adf.models.aasist); training,
`adf detect`, checkpoints and scoring need no change.

The back-end interface
----------------------
A back-end is an `nn.Module` built as `cls(embed_dim=D, num_layers=L, **options)`
(D: the backbone's feature size, L: its transformer layer count; options come
from the hparams / checkpoint metadata and must be JSON-serialisable) with

* `forward(feats, mask, return_embedding=False)` -> logits [B, 2] in the order
  **[fake, real]** (label 1 = real), or `(logits, embedding [B, E])` with
  `return_embedding` (the utterance embedding that OC-softmax and the analysis
  mode use; E is free);
* `feats`: the last transformer layer's output [B, T, D] (after the
  encoder's final layer norm, i.e. fairseq's `features_only=True` "x"), or,
  when the class sets `layers = "all"`, a tensor [B, L, T, D] with the output
  of every transformer layer (before the final layer norm, as fairseq's
  `layer_results`; a layer skipped by layer drop repeats its input, so L is
  fixed);
* `mask`: [B, T] bool, True = valid frame, or None when nothing is padded.
  A back-end that cannot mask padding sets the class attribute
  `takes_mask = False`: it then always gets mask None and SSLClassifier calls
  it once per utterance on that utterance's valid frames, so a padded batch
  gives the same scores as each utterance alone;
* optionally `frame_logits(feats)` -> [B, T, 2] per-frame logits (frame-level
  training and localisation: `targets: frames`, `adf detect --resolution`;
  the mean back-end has it);
* optionally `aux_loss`: a scalar tensor the back-end sets during a training
  forward pass (e.g. VIB's beta * KL); SSLBrain adds it to the loss. Leave it
  None otherwise.

Back-ends run in fp32 (SSLClassifier casts the features). A published
checkpoint layout (`ssl_model.model.*` + the back-end's keys) becomes
`backend.*` by a prefix rename when the back-end keeps the published
parameter names (AASIST), or else through the class attribute
`published_keys`: [(regular expression, replacement)] from each published
key to the back-end's own name (adf.checkpoints.published applies the rules
that name most of a file's keys).

Class attributes: `default_input` names the input policy its published
system was trained with (adf.input_policy): "first-64600" for the
fixed-input systems (SSL_Anti-spoofing and its descendants), "whole" by
default; `paper_name` is the name `adf models` shows ("AASIST", "SLS", ...).

A back-end subclasses `Backend`, which holds these attributes' common values.

Registering: call `register_backend("<name>", Class)` at the bottom of the
back-end's module and add that module's import to `_register_known` below
(imported lazily, so `adf --help` stays torch-free).
"""
from __future__ import annotations

import torch
from torch import nn

from adf.models.backends.masking import masked_mean


class Backend(nn.Module):
    """Base class of the back-ends: the interface's class attributes (module
    docstring) with their common values; a back-end sets only those that differ."""

    layers = "last"  # or "all": every transformer layer's output [B, L, T, D]
    takes_mask = True  # False: called once per utterance on its valid frames
    default_input = "whole"  # the input policy its published system was trained with
    aux_loss = None  # a training forward pass may leave a scalar here (VIB's KL term)
    published_keys = None  # [(regex, replacement)] from a published checkpoint's keys to ours


class MeanLinear(nn.Linear, Backend):
    """The AntiDeepfake back-end: mean over valid frames, then Linear(D, 2).

    A subclass of nn.Linear so that, held as SSLClassifier's `proj_fc`, its
    weights keep the names of the released checkpoints (`proj_fc.weight`,
    `proj_fc.bias`). The embedding is the pooled feature vector.
    """

    def __init__(self, embed_dim, num_layers=None):
        del num_layers
        super().__init__(embed_dim, 2)

    def forward(self, feats, mask=None, return_embedding=False):
        emb = masked_mean(feats, mask, dim=1)
        logits = super().forward(emb.to(self.weight.dtype))
        return (logits, emb) if return_embedding else logits

    def frame_logits(self, feats):
        """Per-frame [fake, real] logits [B, T, 2]: the same linear map on every frame. Being
        linear, their mean over the valid frames is exactly the utterance logits."""
        return super().forward(feats.to(self.weight.dtype))


# name -> class; "mean" is the plain SSL detector (registered without a suffix)
BACKENDS = {"mean": MeanLinear}


def register_backend(name, cls):
    """Make back-end `cls` available as `<backbone>_<name>` for every backbone."""
    if name in BACKENDS and BACKENDS[name] is not cls:
        raise ValueError(f"back-end {name!r} is already registered")
    BACKENDS[name] = cls
    return cls


def build_backend(name, embed_dim, num_layers, **options):
    """A randomly initialised back-end `name` for a backbone of size (D, L)."""
    _register_known()
    if name not in BACKENDS:
        raise KeyError(f"unknown back-end {name!r}; choose one of: {', '.join(BACKENDS)}")
    return BACKENDS[name](embed_dim=embed_dim, num_layers=num_layers, **options)


def backend_names():
    """Every registered back-end name, "mean" first."""
    _register_known()
    return list(BACKENDS)


def _register_known():
    """Import the modules that register the library's back-ends (lazily: torch-free start-up).
    One import per back-end module."""
    import adf.models.aasist  # noqa: F401  (registers "aasist")
    import adf.models.backends.mamba  # noqa: F401  (the others register themselves too)
    import adf.models.backends.sls  # noqa: F401
    import adf.models.backends.tcm  # noqa: F401
    import adf.models.backends.vib  # noqa: F401


def uses_all_layers(backend):
    return getattr(backend, "layers", "last") == "all"


def stack_layers(layer_outputs):
    """[L] x [B, T, D] -> [B, L, T, D] (what an all-layer back-end gets)."""
    return torch.stack(layer_outputs, dim=1)
