"""Averaging the N best checkpoints (hparams `average_best`, `adf average`): tiny model, toy corpus."""
import os
import re
import pytest
import torch

from adf.train import main as train_main
from tests.synth import toy_corpus

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HPARAMS = os.path.join(ROOT, "recipes", "posttrain", "hparams", "tiny.yaml")
N = 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    toy_corpus(root, (16, 8, 8))
    out = root / "exp"
    args = [HPARAMS, "--data_folder", root, "--manifest_folder", root / "data", "--output_folder", out,
            "--noprogressbar", "--max_batch_seconds", "4", "--warmup_steps", "2", "--lr", "0.003",
            "--number_of_epochs", "2", "--valid_step", "3", "--average_best", str(N)]
    assert train_main([str(a) for a in args]) == 0
    return root, out


def _checkpoints(out):
    from speechbrain.utils.checkpoints import Checkpointer

    return Checkpointer(out / "save").list_checkpoints()


def test_only_the_n_best_by_validation_eer_are_kept(trained):
    _, out = trained
    logged = [float(m) for m in re.findall(r"valid EER: ([0-9.e+-]+)", (out / "train_log.txt").read_text())]
    assert len(logged) > N + 1, "the run must validate more often than it keeps checkpoints"
    kept = _checkpoints(out)
    newest = max(kept, key=lambda c: c.meta["unixtime"])
    best = sorted(kept, key=lambda c: c.meta["EER"])[:N]
    # The N lowest EERs of every validation are the N best kept (SpeechBrain also keeps the newest).
    assert sorted(c.meta["EER"] for c in best) == pytest.approx(sorted(logged)[:N])
    assert {c.path for c in kept} - {c.path for c in best} <= {newest.path}


def test_averaged_model_is_the_mean_of_the_n_best_saved_weights(trained):
    import json

    from safetensors import safe_open

    from adf.checkpoints import load_model

    _, out = trained
    path = out / "save" / "averaged_model.safetensors"
    with safe_open(str(path), "pt") as f:
        names = json.loads(f.metadata()["extra"])["averaged_from"]
    kept = {os.path.basename(str(c.path)): c for c in _checkpoints(out)}
    chosen = [kept[n] for n in names]
    others = [c for n, c in kept.items() if n not in names]
    # the best by EER, one per optimizer step (a step validated twice holds the same weights)
    steps = [c.meta["optimizer_step"] for c in chosen]
    assert len(set(steps)) == len(steps) == min(N, len({c.meta["optimizer_step"] for c in kept.values()}))
    assert all(c.meta["EER"] <= o.meta["EER"] for c in chosen for o in others
               if o.meta["optimizer_step"] not in steps)
    saved = [torch.load(os.path.join(c.path, "model.ckpt"), weights_only=True) for c in chosen]
    averaged = load_model(path, model_name="tiny").state_dict()
    floats = [k for k, v in saved[0].items() if v.is_floating_point()]
    assert floats
    for k in floats:
        by_hand = sum(sd[k].double() for sd in saved) / len(saved)
        torch.testing.assert_close(averaged[k].double(), by_hand, rtol=0, atol=1e-6, msg=k)
    # the checkpoints differ, so the mean is not any one of them
    assert any(not torch.equal(saved[0][k], saved[1][k]) for k in floats)


def test_inference_scores_the_averaged_model(trained):
    import pandas as pd

    root, out = trained
    common = [HPARAMS, "--data_folder", root, "--manifest_folder", root / "data", "--output_folder", out,
              "--noprogressbar", "--mode", "inference"]
    scores = []
    for extra in (["--average_best", N], ["--score_ckpt", out / "save" / "averaged_model.safetensors"],
                  ["--score_ckpt", out / "save" / "best_model.safetensors"]):
        assert train_main([str(a) for a in common + extra]) == 0
        scores.append(pd.read_csv(out / "scores" / "test.csv").sort_values("id").reset_index(drop=True))
    pd.testing.assert_frame_equal(scores[0], scores[1])  # average_best: the averaged model is scored
    assert not scores[0].equals(scores[2])


def _adf(capsys, *args):
    from adf.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def test_cli_average_equals_the_mean_and_refuses_mixed_models(trained, tmp_path, capsys):
    from adf.checkpoints import load_model, save_checkpoint
    from adf.models.registry import build_model

    _, out = trained
    a = out / "save" / "best_model.safetensors"
    b = out / "save" / "averaged_model.safetensors"
    rc, err = _adf(capsys, "average", a, b, "-o", tmp_path / "ab.safetensors")
    assert rc == 0, err
    sa, sb_, sab = (load_model(p, model_name="tiny").state_dict() for p in (a, b, tmp_path / "ab.safetensors"))
    for k, v in sa.items():
        if v.is_floating_point():
            torch.testing.assert_close(sab[k].double(), (v.double() + sb_[k].double()) / 2, rtol=0, atol=1e-6)
    other = tmp_path / "other.safetensors"
    save_checkpoint(build_model("aasist_l"), other)
    rc, err = _adf(capsys, "average", a, other, "-o", tmp_path / "bad.safetensors")
    assert rc == 2 and err.startswith("adf average: error: ") and "cannot average different architectures" in err
    assert not (tmp_path / "bad.safetensors").exists()
    rc, err = _adf(capsys, "average", a, "-o", tmp_path / "one.safetensors")
    assert rc == 2 and "at least two checkpoints" in err
