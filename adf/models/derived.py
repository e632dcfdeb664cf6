"""Tensors derived from a module's weights, cached on the module until the weights change."""
from __future__ import annotations


def cached(module, attr, sources, compute):
    """`compute()` (a value derived from the tensors `sources`), kept on `module`
    as the plain attribute `attr` (not in state dicts) until one of the sources
    changes: its storage, version counter (in-place updates), dtype or device
    is the key. Tensors made under inference_mode have no version counter, so
    then nothing is cached."""
    if any(t.is_inference() for t in sources):
        return compute()
    key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in sources)
    entry = getattr(module, attr, None)
    if entry is None or entry[0] != key:
        entry = (key, compute())
        setattr(module, attr, entry)
    return entry[1]
