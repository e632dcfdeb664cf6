"""Checkpoints by name: local files, exported folders and Hugging Face Hub repositories.

`resolve_checkpoint(spec)` turns what a user gave as a checkpoint into one
local file; every loader goes through it (adf.checkpoints.read_checkpoint),
so anything that accepts a checkpoint accepts all of these:

* an existing file: itself;
* an existing folder: its `model.safetensors` (a folder written by
  `adf export`, or a downloaded Hub snapshot); when the folder's
  `config.json` records the weights' sha256 (adf export does), it is checked;
* `ORG/NAME[@REVISION]`, when no such local path exists: `model.safetensors`
  of that Hub model repository, downloaded once by huggingface_hub into the
  standard cache (`HF_HOME`/hub, or `HF_HUB_CACHE`) and read from there
  afterwards. REVISION is a branch, a tag or a full commit hash (default
  `main`); `HF_HUB_OFFLINE=1` reads the cache only. A file read from the cache
  is verified: the Hub names a large (LFS) file's blob by the sha256 of its
  content, which is recomputed.

Local paths win: a folder `org/name` in the working directory is that folder,
not the Hub repository.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from adf.checkpoints.files import CheckpointError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# ORG/NAME as the Hub allows them, then an optional @REVISION.
_HUB_NAME = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95})(?:@(?P<revision>[\w./-]+))?")
# A missing `dir/model.ckpt` is a mistyped file, never a repository name.
_FILE_SUFFIXES = (".ckpt", ".pt", ".pth", ".safetensors", ".bin")

_verified = {}  # (real path, size, mtime_ns) -> sha256: each file is hashed once per process


def parse_hub_name(spec):
    """(repo id, revision or None) when `spec` reads as ORG/NAME[@REVISION], else None."""
    match = _HUB_NAME.fullmatch(str(spec))
    if match is None or match.group("repo").lower().endswith(_FILE_SUFFIXES):
        return None
    return match.group("repo"), match.group("revision")


def file_sha256(path):
    """Hex sha256 of a file's content, computed once per process for an unchanged file
    (resolving a checkpoint verifies it, and `adf detect` records the same hash)."""
    from adf.run_record import file_sha256 as compute

    real = os.path.realpath(path)
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns)
    if key not in _verified:
        _verified[key] = compute(real)
    return _verified[key]


def hub_cache_dir():
    """The Hub cache huggingface_hub uses (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def resolve_checkpoint(spec):
    """The local checkpoint file `spec` names (module docstring), as a path string.

    Raises CheckpointError naming `spec` (and, for Hub names, the repository,
    revision and cache) when it names nothing usable. A `spec` that is neither
    an existing path nor a Hub name comes back unchanged, for the reader's own
    "no such file" error."""
    path = Path(spec)
    if path.is_dir():
        return str(_folder_weights(path))
    name = None if os.path.lexists(path) else parse_hub_name(spec)
    if name is None:
        return os.fspath(spec)
    return _hub_weights(str(spec), *name)


def _folder_weights(folder):
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{folder}: is a folder without {WEIGHTS_FILE} (give a checkpoint file, a "
                              "folder written by `adf export`, or a Hub name ORG/NAME)")
    config = folder / CONFIG_FILE
    expected = None
    if config.is_file():
        try:
            expected = (json.loads(config.read_text(encoding="utf-8")).get("weights") or {}).get("sha256")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
            raise CheckpointError(f"{config}: not a readable JSON model configuration ({err})") from None
    if expected is not None and file_sha256(weights) != expected:
        raise CheckpointError(f"{weights}: sha256 {file_sha256(weights)} differs from the {expected} that "
                              f"{config} records: the weights were changed or damaged after export")
    return weights


def _hub_weights(spec, repo, revision):
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError,
                                        LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    cache = hub_cache_dir()
    at = f"{repo}@{revision or 'main'}"
    prefix = f"{spec}: no such local file or folder; as a Hugging Face model ({at})"
    try:
        local = hf_hub_download(repo, WEIGHTS_FILE, revision=revision, library_name="adf")
    except LocalEntryNotFoundError:
        why = ("HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hub could not be reached")
        raise CheckpointError(
            f"{prefix}: not in the Hugging Face cache {cache} and {why}; download it once with network "
            f"access (any adf command given --ckpt {spec}), or point HF_HOME (or HF_HUB_CACHE) at a cache "
            "that holds it") from None
    except GatedRepoError:
        raise CheckpointError(f"{prefix}: the repository is gated; accept its terms on the Hub and log in "
                              "(`hf auth login`)") from None
    except RepositoryNotFoundError:
        raise CheckpointError(f"{prefix}: no such model repository on the Hub (or it is private: log in "
                              "with `hf auth login`)") from None
    except RevisionNotFoundError:
        raise CheckpointError(f"{prefix}: the repository has no revision {revision!r}") from None
    except EntryNotFoundError:
        raise CheckpointError(f"{prefix}: the repository holds no {WEIGHTS_FILE}") from None
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise CheckpointError(f"{prefix}: download failed ({err})") from None
    _verify_blob(spec, local)
    return local


def _verify_blob(spec, local):
    """CheckpointError unless a cached LFS file's content has the sha256 its blob is named by."""
    blob = os.path.realpath(local)
    name = os.path.basename(blob)
    if re.fullmatch(r"[0-9a-f]{64}", name) and file_sha256(blob) != name:
        raise CheckpointError(f"{spec}: the cached file {blob} is damaged: its sha256 is {file_sha256(blob)}, "
                              f"not the {name} the Hub names it by; delete it and run again to download it "
                              "afresh")
