"""Reading and writing checkpoint files safely.

Two container formats are read, recognised by their first bytes rather than
their extension:

* safetensors (`model.safetensors`, adf's own checkpoints): no code can run
  while reading, and the header carries string metadata;
* PyTorch pickles (`.ckpt`, `.pt`, zip or legacy format): read with
  `torch.load(weights_only=True)` and an explicit allow-list of the few
  non-tensor types that fairseq checkpoints legitimately hold. Anything else
  is refused, with the global that was refused and how to convert the file
  if its source is trusted (`tools/convert_checkpoint.py --trust-pickle`).

This module only turns a file into `{key: tensor}` plus metadata; key names are
dealt with in `adf.checkpoints.keys`.
"""
from __future__ import annotations

import argparse
import json
import pickle
import re
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from adf.atomic import atomic_path

CONVERT_HINT = "python tools/convert_checkpoint.py --trust-pickle {path} OUT.safetensors"

# Types a fairseq checkpoint holds besides tensors and builtins: the old `args`
# Namespace, and numpy scalars/arrays in its training statistics. Tuples give
# the name under which numpy < 2 pickled the same function.
_NUMPY_DTYPES = [np.dtypes.BoolDType, np.dtypes.Int8DType, np.dtypes.Int16DType,
                 np.dtypes.Int32DType, np.dtypes.Int64DType, np.dtypes.UInt8DType,
                 np.dtypes.UInt16DType, np.dtypes.UInt32DType, np.dtypes.UInt64DType,
                 np.dtypes.Float16DType, np.dtypes.Float32DType, np.dtypes.Float64DType]
SAFE_GLOBALS = [
    argparse.Namespace,
    np.dtype,
    np.ndarray,
    *_NUMPY_DTYPES,
    np._core.multiarray.scalar,
    np._core.multiarray._reconstruct,
    (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),
    (np._core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
]


class CheckpointError(Exception):
    """A checkpoint file that cannot be used: the message names the file and the problem."""


@dataclass
class RawCheckpoint:
    """The tensors of a checkpoint file under their stored names, plus what else it said."""

    path: Path
    tensors: dict
    metadata: dict = field(default_factory=dict)  # safetensors header metadata (strings)


def check_checkpoint_path(path):
    """Raise CheckpointError unless `path` is a regular file this process may read
    (a FIFO would block a reader, a directory is not a checkpoint)."""
    import os
    import stat as st

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint file") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be read ({err.strerror})") from None
    if st.S_ISDIR(mode):
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    if not st.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if st.S_ISFIFO(mode) else "not a regular file"
        raise CheckpointError(f"{path}: is {kind}, not a checkpoint file")
    if not os.access(path, os.R_OK):
        raise CheckpointError(f"{path}: permission denied (not readable)")


def _container(path):
    """'zip', 'legacy' (old torch.save) or 'safetensors', from the file's first bytes."""
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    with open(path, "rb") as f:
        head = f.read(9)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                is_torch = any(n.endswith("data.pkl") for n in archive.namelist())
        except zipfile.BadZipFile as err:
            raise CheckpointError(f"{path}: truncated or corrupt zip archive ({err})") from None
        if not is_torch:
            raise CheckpointError(f"{path}: a zip archive but not a PyTorch checkpoint (no data.pkl)")
        if path.suffix.lower() == ".safetensors":  # torch.load would read it as safetensors
            raise CheckpointError(f"{path}: named .safetensors but holds a PyTorch (zip) checkpoint; "
                                  "rename it to .ckpt or .pt")
        return "zip"
    if head.startswith(b"\x80"):  # a pickle protocol opcode: torch.save's legacy format
        return "legacy"
    if len(head) == 9 and head[8:9] == b"{":
        (header_len,) = struct.unpack("<Q", head[:8])
        if 8 + header_len <= size:
            return "safetensors"
        raise CheckpointError(f"{path}: truncated safetensors file (header runs past the end)")
    raise CheckpointError(f"{path}: neither a PyTorch checkpoint nor a safetensors file")


# What torch's weights-only unpickler says when it refuses (rather than fails to
# read) a pickle: a global off the allow-list, an opcode outside its subset, ...
_REFUSED = re.compile(r"GLOBAL|Unsupported|unrecognized|not an allowed|allowlist|safe_globals", re.I)


def _refusal(path, err):
    try:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # legacy format: only the unpickler's message names the global
        needed = re.findall(r"GLOBAL ([\w.]+)", str(err))
    if not needed:  # no global: an opcode or a call outside the weights-only subset
        detail = str(err).split("WeightsUnpickler error:")[-1].strip().splitlines()
        needed = [f"a pickle operation outside the safe subset ({detail[0] if detail else 'unknown'})"]
    return CheckpointError(
        f"{path}: refused to unpickle: it needs {', '.join(needed)}, "
        "which is not on adf's allow-list of types that are safe to load (torch.load "
        "weights_only=True); unpickling it could run arbitrary code. If you trust the file's "
        f"source, convert it once with `{CONVERT_HINT.format(path=path)}` and load the "
        "converted file."
    )


def _short(err):
    """The first sentence of a library's error message (torch's run to several lines)."""
    lines = str(err).strip().split(". ")[0].splitlines()
    return lines[0] if lines else type(err).__name__


def _torch_object(path, container, trust_pickle=False):
    if trust_pickle:
        return torch.load(path, map_location="cpu", weights_only=False)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True,
                              mmap=container == "zip")
    except pickle.UnpicklingError as err:
        if _REFUSED.search(str(err).split("WeightsUnpickler error:")[-1]):
            raise _refusal(path, err) from None
        raise CheckpointError(f"{path}: corrupt PyTorch checkpoint ({_short(err)})") from None
    except (RuntimeError, OSError, EOFError, ValueError, struct.error, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{path}: truncated or corrupt PyTorch checkpoint ({_short(err)})") from None


def _tensors_of(obj, path):
    """The state dict inside a loaded object (a fairseq checkpoint keeps it under "model")."""
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]  # fairseq: {"model", "cfg" or "args", "optimizer_history", ...}
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path}: holds no state dict (found {type(obj).__name__})")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{path}: not a state dict: {len(bad)} entries are not tensors "
            f"(e.g. {', '.join(map(str, bad[:5]))})")
    return dict(obj)


# Casting while reading is about memory, which only the large tensors decide;
# smaller ones (biases, norms, the detector head) are read in fp32, so that
# SSLClassifier.set_precision can keep the norms and the head exact.
CAST_MIN_ELEMENTS = 1 << 16


def _cast(tensor, dtype):
    if dtype is None or not tensor.is_floating_point():
        return tensor
    return tensor.to(dtype if tensor.numel() >= CAST_MIN_ELEMENTS else torch.float32)


def read_file(path, trust_pickle=False, dtype=None):
    """Read a checkpoint file into a RawCheckpoint without running untrusted code.

    `trust_pickle=True` unpickles with full trust; only the conversion tool
    passes it, on the user's explicit request. `dtype` casts floating-point
    tensors (of at least CAST_MIN_ELEMENTS; smaller ones become fp32) one at a
    time as they are read, so a bf16 model loaded from an
    fp32 file never holds the whole fp32 copy (safetensors; torch files are
    memory-mapped).
    """
    path = Path(path)
    check_checkpoint_path(path)
    container = _container(path)
    if container == "safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
                keys = list(f.keys())
                if dtype is None:
                    tensors = {k: f.get_tensor(k) for k in keys}
            if dtype is not None:
                # Pages read through the file mapping count as resident until it
                # is closed: one opening per tensor keeps at most one fp32
                # tensor resident next to the cast ones.
                tensors = {}
                for k in keys:
                    with safe_open(str(path), framework="pt") as f:
                        tensors[k] = _cast(f.get_tensor(k), dtype)
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(f"{path}: truncated or corrupt safetensors file ({_short(err)})") from None
        if not tensors:
            raise CheckpointError(f"{path}: the safetensors file holds no tensors")
        return RawCheckpoint(path, tensors, dict(metadata))
    tensors = _tensors_of(_torch_object(path, container, trust_pickle), path)
    return RawCheckpoint(path, {k: _cast(v, dtype) for k, v in tensors.items()})


def write_safetensors(tensors, path, metadata):
    """Write `tensors` with string `metadata` atomically (temporary file, then rename)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata={k: str(v) for k, v in metadata.items()})


def metadata_json(metadata, key, path):
    """Decode the JSON string stored under `key` in safetensors metadata (None when absent)."""
    if key not in metadata:
        return None
    try:
        return json.loads(metadata[key])
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: metadata {key!r} is not valid JSON ({err})") from None
