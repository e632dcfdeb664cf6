"""Key layouts of the published SSL + back-end detectors (SLS, Conformer+TCM, XLSR-Mamba).

Their training scripts save `model.state_dict()` of a `Model` holding the
fairseq XLS-R under `ssl_model.model.` and the back-end's layers beside it
(with `module.` in front when trained under nn.DataParallel, as SLS is). The
backbone part is renamed by the fairseq table (adf.checkpoints.keys), the
back-end part by the rules of its adf module (`PUBLISHED_KEYS`: regular
expressions matched against the whole key). Keys no rule knows keep their
names, so that strict loading lists them as unexpected.
"""
from __future__ import annotations

import re

from adf.checkpoints.keys import BACKBONE_PREFIX, PRETRAINING_ONLY, fairseq_to_torchaudio

PUBLISHED_SSL_PREFIX = "ssl_model.model."
DATA_PARALLEL_PREFIX = "module."


def is_published_layout(tensors):
    """Whether `tensors` look like a published SSL + back-end `Model` state dict."""
    return any(k.removeprefix(DATA_PARALLEL_PREFIX).startswith(PUBLISHED_SSL_PREFIX) for k in tensors)


def rename_backend_key(key, rules):
    """The adf name of back-end key `key` under `rules` [(pattern, replacement)], or None."""
    for pattern, replacement in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, replacement, key)
    return None


def published_to_adf(tensors, rules, backend_prefix="backend."):
    """A published state dict renamed to adf keys: `backbone.<torchaudio>` and
    `<backend_prefix><adf back-end name>` (see the module docstring)."""
    out = {}
    for key, value in tensors.items():
        inner = key.removeprefix(DATA_PARALLEL_PREFIX)
        if inner.startswith(PUBLISHED_SSL_PREFIX):
            fairseq_key = inner[len(PUBLISHED_SSL_PREFIX):]
            if PRETRAINING_ONLY.fullmatch(fairseq_key):
                continue
            name = fairseq_to_torchaudio(fairseq_key)
            out[BACKBONE_PREFIX + name if name else key] = value
            continue
        name = rename_backend_key(inner, rules)
        out[backend_prefix + name if name else key] = value
    return out


def load_published_backend(backend, tensors, rules, source):
    """Copy the back-end part of published state dict `tensors` into `backend`, strictly.

    Backbone keys (`ssl_model.model.*`) are left out; any other key must be
    one of `backend`'s, with its shape (CheckpointError naming `source`
    otherwise).
    """
    from adf.checkpoints.loading import check_fits

    renamed = {k: v for k, v in published_to_adf(tensors, rules, backend_prefix="").items()
               if not k.startswith(BACKBONE_PREFIX)}
    check_fits(backend.state_dict(), renamed, source, f"the {type(backend).__name__} back-end")
    backend.load_state_dict(renamed, strict=True)
    return backend
