"""End to end: recipes/posttrain/run.sh, every stage, its default models (stats_trees and tiny),
a few egs clips."""
import os
import re
import subprocess

import pandas as pd
import pytest
from tests.synth import ROOT

REPO = str(ROOT)
RECIPE = os.path.join(REPO, "recipes", "posttrain")


def _subset_of_egs(root, per_split_and_label=4):
    """A data root holding a few clips of each split and label of egs_data (symlinked)."""
    meta = pd.read_csv(os.path.join(REPO, "egs_data", "metadata.csv"))
    keep = meta.groupby(["split", "label"], group_keys=False).head(per_split_and_label)
    for rel in keep["file"]:
        os.makedirs(os.path.dirname(root / rel), exist_ok=True)
        os.symlink(os.path.join(REPO, "egs_data", rel), root / rel)
    keep.to_csv(root / "metadata.csv", index=False)
    return keep


def _run(work, root, *extra):
    cmd = ["bash", os.path.join(RECIPE, "run.sh"), "--data_root", str(root),
           "--data_dir", str(work / "data"), "--exp_dir", str(work / "exp"),
           "--train_args", "--optimizer_step_limit 4 --noprogressbar", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_every_stage_runs_and_reruns_are_idempotent(tmp_path):
    root = tmp_path / "egs"
    keep = _subset_of_egs(root)
    res = _run(tmp_path, root)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    test = pd.read_csv(tmp_path / "data" / "test.csv")
    assert len(test) == (keep["split"] == "test").sum()
    for name in ("stats_trees_posttrain", "tiny_posttrain", "tiny_finetune"):
        scores = pd.read_csv(tmp_path / "exp" / "scores" / f"{name}.csv")
        assert sorted(scores["id"]) == sorted(test["ID"])
    assert not (tmp_path / "exp" / "stats_trees_finetune").exists()  # fitted models have no stage 3
    assert "stats_trees has no fine-tuning" in res.stderr
    results = (tmp_path / "exp" / "results.md").read_text()
    assert re.search(r"\| Attack \| stats_trees_posttrain \| tiny_posttrain \| tiny_finetune \|", results)
    assert "Pooled" in results
    assert re.search(r"EER", res.stdout)
    again = _run(tmp_path, root)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("up to date") >= 6, again.stderr


def test_bad_options_are_refused_with_a_message(tmp_path):
    res = subprocess.run(["bash", os.path.join(RECIPE, "run.sh"), "--modle", "tiny"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "unknown option --modle" in res.stderr
    res = subprocess.run(["bash", os.path.join(RECIPE, "run.sh"), "--model", "nope", "--stage", "2"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "no hparams/nope.yaml" in res.stderr


@pytest.mark.slow
def test_a_fitted_model_runs_in_one_process_when_ngpu_asks_for_torchrun(tmp_path):
    """stats_trees refuses torchrun (one fit, one process); --ngpu 2 launches it plainly."""
    root = tmp_path / "egs"
    _subset_of_egs(root)
    res = _run(tmp_path, root, "--model", "stats_trees", "--ngpu", "2", "--stop_stage", "3")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (tmp_path / "exp" / "stats_trees_posttrain" / "save" / "best_model.safetensors").is_file()
    assert "torchrun" not in res.stderr and "stats_trees has no fine-tuning" in res.stderr
