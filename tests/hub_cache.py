"""Hugging Face Hub caches built by tests: what huggingface_hub leaves on disk after a download."""
import hashlib
import os


def add_snapshot(cache, repo, commit, files, refs=()):
    """Put `files` {name: bytes} into `cache` as revision `commit` of model repo `repo`,
    the way huggingface_hub stores a download: models--ORG--NAME/ with the content in
    blobs/ named by its sha256 (the Hub's LFS object id), snapshots/<commit>/<name> as
    relative symbolic links to the blobs, and refs/<ref> holding the commit hash."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    for sub in ("blobs", "refs", f"snapshots/{commit}"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        sha = hashlib.sha256(data).hexdigest()
        (folder / "blobs" / sha).write_bytes(data)
        link = folder / "snapshots" / commit / name
        if link.is_symlink():
            link.unlink()
        link.symlink_to(os.path.join("..", "..", "blobs", sha))
    for ref in refs:
        (folder / "refs" / ref).write_text(commit)
    return folder


def use_offline_cache(monkeypatch, cache):
    """Make huggingface_hub read `cache`, offline. It reads HF_HUB_CACHE and HF_HUB_OFFLINE
    once, when first imported: in-process tests set its constants (a fresh process
    reads the environment variables)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
