"""Issue 16, class 7: long inputs get a warning and progress reaches logs;
every script in tools/ and the recipes' train.py run when called directly."""
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from adf.cli import main
from adf.inference import Item, score_items
from adf.models.classifier import build_classifier
from adf.progress import LogProgress
from tests.synth import ROOT


def clips(folder, lengths):
    out = []
    for k, n in enumerate(lengths):
        path = folder / f"c{k}.wav"
        sf.write(path, (0.1 * np.random.default_rng(k).standard_normal(n)).astype("float32"), 16000)
        out.append(str(path))
    return out


def test_long_inputs_get_one_warning_suggesting_windows(tmp_path):
    model = build_classifier("tiny").eval()
    files = clips(tmp_path, [8000, 16000, 24000])
    said = []
    scores = list(score_items(model, [Item(str(k), f) for k, f in enumerate(files)], long_input_seconds=0.75,
                              notice=said.append))
    assert all(s.ok for s in scores)
    assert len(said) == 1
    assert said[0].startswith("2 input(s) longer than 0.75 s (longest 2 s, ") and files[2] in said[0]
    assert "--window" in said[0]
    said.clear()  # windows are short: no warning
    list(score_items(model, [Item("x", files[2])], window=0.5, long_input_seconds=0.75, notice=said.append))
    assert said == []


def test_detect_warns_about_long_inputs(ckpt, tmp_path, capsys, monkeypatch):
    import adf.detect

    monkeypatch.setattr(adf.detect, "LONG_INPUT_SECONDS", 0.75)
    files = clips(tmp_path, [8000, 16000])
    assert main(["detect", "--ckpt", ckpt, "-o", str(tmp_path / "s.csv"), "--workers", "0", *files]) == 0
    assert "warning: 1 input(s) longer than 0.75 s" in capsys.readouterr().err


def test_progress_lines_when_not_on_a_terminal(ckpt, tmp_path, capsys):
    files = clips(tmp_path, [8000, 9000, 10000])
    # capsys's stderr is not a terminal: before, tqdm printed nothing at all
    assert main(["detect", "--ckpt", ckpt, "-o", str(tmp_path / "s.csv"), "--workers", "0", "--batch-size", "1",
                 "--progress-every", "0", *files]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("detect: ")]
    assert lines[0].startswith("detect: 1/3 inputs (33%) in ") and "left" in lines[0]
    assert lines[-1].startswith("detect: 3/3 inputs (100%)")


def test_log_progress_is_quiet_between_intervals(capsys):
    bar = LogProgress("job", "item", every=3600)
    bar.total = 10
    for _ in range(10):
        bar.update()
    assert capsys.readouterr().err == ""  # nothing within the interval ...
    bar.close()
    assert capsys.readouterr().err.startswith("job: 10/10 items (100%)")  # ... and one line at the end


def _bare_python():
    """The interpreter beneath the venv, when it lacks pandas (as a fresh system python does)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    probe = subprocess.run([base, "-c", "import pandas"], capture_output=True, env={"PATH": "/usr/bin:/bin"})
    if probe.returncode == 0:
        pytest.skip("the base interpreter has pandas: cannot show a missing environment")
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv in the repository")
    return base


SCRIPTS = sorted(p.relative_to(ROOT).as_posix() for p in [*ROOT.glob("tools/*.py"), *ROOT.glob("recipes/*/train.py")])


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_are_executable_with_a_python3_shebang(script):
    path = ROOT / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    assert path.read_text().startswith("#!/usr/bin/env python3\n")


# recipes/finetune/train.py is the same four lines as posttrain's (and costs a SpeechBrain import)
@pytest.mark.parametrize("script", [s for s in SCRIPTS if s != "recipes/finetune/train.py"])
def test_scripts_run_directly_without_the_activated_environment(script, tmp_path):
    base = _bare_python()
    # before: ModuleNotFoundError (pandas, torch, adf) under a python without the environment
    run = subprocess.run([base, str(ROOT / script), "--help"], capture_output=True, text=True, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage" in run.stdout.lower() or "options" in run.stdout.lower()


def test_score_eer_scores_a_file_when_called_directly(tmp_path):
    base = _bare_python()
    scores = tmp_path / "scores.txt"
    scores.write_text("id,path,logit_fake,logit_real,label\na,a.wav,0,2,1\nb,b.wav,2,0,0\nc,c.wav,1,0.5,1\n")
    run = subprocess.run([base, str(ROOT / "tools/score_eer.py"), str(scores)], capture_output=True, text=True,
                         cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Pooled" in run.stdout


def test_missing_environment_is_one_line(tmp_path):
    base = _bare_python()
    code = ("import sys; sys.path.insert(0, %r); import adf.environment as e; "
            "e.repo_python = lambda: '/nonexistent/python'; e.use_repo_environment()") % str(ROOT)
    run = subprocess.run([base, "-c", code], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert run.returncode == 2
    assert "cannot import pandas" in run.stderr and "setup_env.sh" in run.stderr and "Traceback" not in run.stderr
