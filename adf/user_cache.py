"""adf's folder for what it caches per user and machine: $ADF_CACHE_DIR, else
$XDG_CACHE_HOME/adf, else ~/.cache/adf (the precision probe's results,
adf.precision; the onnxruntime engine's graphs, adf.onnx_engine)."""
from __future__ import annotations

import os


def cache_dir(*parts):
    """The cache folder, or a path below it (not created)."""
    root = os.environ.get("ADF_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "adf")
    return os.path.join(root, *parts)
