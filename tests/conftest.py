"""Fixtures shared by the test modules (a module's own fixture of the same name wins)."""
import os

import pytest
import torch

# Tests never reach the network: Hub names resolve from caches the tests build
# (huggingface_hub reads this when it is first imported).
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory):
    """A saved tiny detector (seed 0): the checkpoint most `adf detect` tests score with."""
    from adf.checkpoints import save_checkpoint
    from adf.models.classifier import build_classifier

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.ckpt"
    save_checkpoint(build_classifier("tiny"), path)
    return str(path)
