"""Fixtures shared by the test modules (a module's own fixture of the same name wins).

Paths into the repository come from `repo_root` (or, at import time, tests.synth.ROOT);
generated audio and manifests from tests.synth, which these fixtures wrap.
"""
import os

import pytest
import torch

# Tests never reach the network: Hub names resolve from caches the tests build
# (huggingface_hub reads this when it is first imported).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.synth import ROOT, tiny_train_argv, write_manifest, write_noise  # noqa: E402


@pytest.fixture(scope="session")
def repo_root():
    """The repository's root folder (a Path)."""
    return ROOT


@pytest.fixture()
def audio_writer(tmp_path):
    """`write(name, seconds=1.0, sr=16000, channels=1, seed=0) -> path`: noise under tmp_path."""
    return lambda name, seconds=1.0, sr=16000, channels=1, seed=0: write_noise(
        tmp_path / name, seconds, sr, channels, seed)


@pytest.fixture()
def manifest_builder(tmp_path):
    """`build(name, rows, **defaults) -> path`: a manifest under tmp_path (tests.synth.write_manifest)."""
    return lambda name, rows, **defaults: write_manifest(tmp_path / name, rows, **defaults)


@pytest.fixture(scope="session")
def tiny_train_args():
    """`args(root, out, *extra)`: the argv of a seconds-long training run of the tiny
    model on a tests.synth.toy_corpus under `root` (tests.synth.tiny_train_argv)."""
    return tiny_train_argv


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory):
    """A saved tiny detector (seed 0): the checkpoint most `adf detect` tests score with."""
    from adf.checkpoints import save_checkpoint
    from adf.models.classifier import build_classifier

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.ckpt"
    save_checkpoint(build_classifier("tiny"), path)
    return str(path)
