"""`adf detect` does no needless work before scoring: what it imports, and the
meta-device model build it loads weights into."""
import json
import subprocess
import sys

import numpy as np
import soundfile as sf
import torch

from adf.checkpoints import save_checkpoint
from adf.models.classifier import build_classifier, build_on_meta
from tests.synth import ROOT


# Runs the CLI in a fresh interpreter and prints the modules it ended up importing.
_PROBE = """
import json, sys
from adf.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _modules_after(args, cwd):
    run = subprocess.run([sys.executable, "-c", _PROBE, *map(str, args)], cwd=cwd, capture_output=True,
                         text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["code"] == 0
    return set(out["modules"])


def test_detect_imports_neither_dynamo_nor_pandas(tmp_path):
    """torch._dynamo (~1 s, once pulled in by weight norm on the meta device) and
    pandas (~0.2 s) are not needed to score files."""
    torch.manual_seed(0)
    save_checkpoint(build_classifier("tiny"), tmp_path / "m.safetensors")
    sf.write(tmp_path / "a.wav", (0.1 * np.random.default_rng(0).standard_normal(16000)).astype("float32"), 16000)
    modules = _modules_after(["detect", "--ckpt", "m.safetensors", "-o", "s.csv", "--workers", "0", "a.wav"],
                             tmp_path)
    assert "adf.detect" in modules and (tmp_path / "s.csv").exists()
    assert "torch._dynamo" not in modules
    assert "pandas" not in modules
    assert "adf.scoring" not in modules  # only the chosen sub-command's module


def test_meta_build_has_the_real_architecture():
    for name in ("tiny", "w2v_small"):
        real = build_classifier(name).state_dict()
        meta = build_on_meta(name).state_dict()
        assert list(meta) == list(real)
        assert all(v.is_meta and v.shape == real[k].shape and v.dtype == real[k].dtype for k, v in meta.items())
    # The weight-norm substitute is only in place while building.
    assert torch.nn.utils.parametrizations.weight_norm.__module__ == "torch.nn.utils.parametrizations"
