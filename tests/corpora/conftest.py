"""Fixtures for the corpus tests (helpers live in corpus_tree.py)."""
import pytest


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "DATA"
    root.mkdir()
    return root
