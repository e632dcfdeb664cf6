"""Back-end key layouts of the published SSL + back-end detectors (SLS, Conformer+TCM, XLSR-Mamba).

Their training scripts save `model.state_dict()` of a `Model` holding the
fairseq XLS-R under `ssl_model.model.` and the back-end's layers beside it
(adf.checkpoints.keys splits the two). A back-end whose adf parameter names
differ from the published ones declares `published_keys`: regular
expressions, matched against the whole published key, with their
replacements. The back-end whose rules name the most keys of a file, and more
than half of them, renames them; keys no rule names keep their published
names, so that strict loading lists them as unexpected. (More than half:
SSL_Anti-spoofing's AASIST head shares a few layer names, `LL` and
`first_bn`, with TCM's and Mamba's, and keeps all its names.)
"""
from __future__ import annotations

import re

from adf.checkpoints.keys import DATA_PARALLEL_PREFIX, SSL_ANTI_SPOOFING_PREFIX


def rename_backend_key(key, rules):
    """The adf name of published back-end key `key` under `rules` [(pattern, replacement)], or None."""
    for pattern, replacement in rules:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, replacement, key)
    return None


def rename_with(head, rules):
    """`head` {published key: tensor} renamed by `rules`; unknown keys keep their names."""
    return {rename_backend_key(k, rules) or k: v for k, v in head.items()}


def published_head_to_adf(head):
    """The back-end part of a published state dict under adf's back-end names (module docstring)."""
    from adf.models.backends import BACKENDS, backend_names

    best, best_count = None, len(head) // 2  # must name more than half of the keys
    for name in backend_names():
        rules = getattr(BACKENDS[name], "published_keys", None)
        count = sum(rename_backend_key(k, rules) is not None for k in head) if rules else 0
        if count > best_count:
            best, best_count = rules, count
    return rename_with(head, best) if best else dict(head)


def load_published_backend(backend, tensors, source):
    """Copy the back-end part of published state dict `tensors` into `backend`, strictly.

    Backbone keys (`ssl_model.model.*`) are left out; every other key must
    name one of `backend`'s parameters or buffers, with its shape
    (CheckpointError naming `source` otherwise).
    """
    from adf.checkpoints.loading import check_fits

    head = {}
    for key, value in tensors.items():
        key = key.removeprefix(DATA_PARALLEL_PREFIX)
        if not key.startswith(SSL_ANTI_SPOOFING_PREFIX):
            head[key] = value
    renamed = rename_with(head, backend.published_keys)
    check_fits(backend.state_dict(), renamed, source, f"the {type(backend).__name__} back-end")
    backend.load_state_dict(renamed, strict=True)
    return backend
