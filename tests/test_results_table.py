"""tools/results_table.py: the per-attack table (--by, --seen) on hand-made scores."""
import os
import subprocess
import sys

import pandas as pd
import pytest
from tests.synth import ROOT

REPO = str(ROOT)
TOOL = os.path.join(REPO, "tools", "results_table.py")


@pytest.fixture()
def files(tmp_path):
    """4 real clips; attack A's two fakes score below every real clip, B's above every one."""
    rows = [("r1", "real", "-", 0.9), ("r2", "real", "-", 0.8), ("r3", "real", "-", 0.7), ("r4", "real", "-", 0.6),
            ("a1", "fake", "A", 0.1), ("a2", "fake", "A", 0.2), ("b1", "fake", "B", 0.95), ("b2", "fake", "B", 0.99)]
    key = tmp_path / "test.csv"
    pd.DataFrame({"ID": [r[0] for r in rows], "Label": [r[1] for r in rows],
                  "Attack": [r[2] for r in rows]}).to_csv(key, index=False)
    scores = tmp_path / "scores.txt"
    scores.write_text("".join(f"{r[0]} {r[3]}\n" for r in rows))
    train = tmp_path / "train.csv"
    pd.DataFrame({"ID": ["t1", "t2"], "Label": ["real", "fake"], "Attack": ["-", "A"]}).to_csv(train, index=False)
    return key, scores, train


def run(*args):
    return subprocess.run([sys.executable, TOOL, *map(str, args)], capture_output=True, text=True, check=True)


def test_one_row_per_attack_against_all_real_trials(files, tmp_path):
    key, scores, train = files
    out = tmp_path / "t.csv"
    run(f"m1={scores}", f"m2={scores}", "--key", key, "--by", "Attack", "--seen", train, "--csv", out,
        "--markdown", tmp_path / "t.md")
    table = pd.read_csv(out)
    assert list(table.columns) == ["attack", "m1", "m2"]
    # '-' (real trials only) has no row; B is not in the training manifest.
    assert list(table.attack) == ["A", "B (unseen in training)", "Pooled"]
    assert table.m1.tolist() == pytest.approx([0.0, 100.0, 50.0])  # hand-computed EERs in %
    assert "| B (unseen in training) | 100.00 | 100.00 |" in (tmp_path / "t.md").read_text()


def test_without_by_the_table_is_unchanged(files, tmp_path):
    key, scores, _ = files
    out = tmp_path / "t.csv"
    run(f"m1={scores}", "--key", key, "--csv", out)
    table = pd.read_csv(out)
    assert list(table.columns) == ["model", "Pooled"] and table.Pooled.tolist() == pytest.approx([50.0])
