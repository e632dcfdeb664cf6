"""Issue 16, class 1: a re-run of `adf detect` with the same -o resumes only rows
produced by the same checkpoint content, score options, adf version and inputs."""
import json
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from adf.checkpoints import save_checkpoint
from adf.cli import main
from adf.models.classifier import build_classifier


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(str(folder / f"tiny{seed}.ckpt"))
        save_checkpoint(build_classifier("tiny"), paths[-1])
    return paths


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    out = []
    for k in range(3):
        path = tmp_path / f"clip{k}.wav"
        sf.write(path, (0.1 * rng.standard_normal(8000)).astype("float32"), 16000)
        out.append(str(path))
    return out


def detect(*argv):
    argv = [str(a) for a in argv]
    if "--precision" not in argv:  # the same numbers on any CPU (auto may pick bf16)
        argv += ["--precision", "fp32"]
    return main(["detect", "--workers", "0", *argv])


def finished_run(ckpt, out, files, *options):
    assert detect("--ckpt", ckpt, "-o", out, *options, *files) == 0
    return out.read_text()


def test_record_names_checkpoint_hash_options_and_version(ckpts, files, tmp_path):
    import hashlib

    import adf

    out = tmp_path / "s.csv"
    finished_run(ckpts[0], out, files, "--window", "0.25", "--aggregate", "min", "--precision", "fp32")
    record = json.loads((tmp_path / "s.csv.run.json").read_text())
    with open(ckpts[0], "rb") as fh:
        assert record["checkpoint_sha256"] == hashlib.sha256(fh.read()).hexdigest()
    assert record["adf_version"] == adf.__version__
    assert record["options"] == {"model": None, "precision": "fp32", "engine": "torch", "input": None,
                                 "window": 0.25, "hop": 0.25,
                                 "aggregate": "min", "ids": "stem"}


def test_changed_checkpoint_content_is_refused(ckpts, files, tmp_path, capsys):
    out = tmp_path / "s.csv"
    model = tmp_path / "model.ckpt"
    model.write_bytes(open(ckpts[0], "rb").read())
    before = finished_run(model, out, files[:2])
    model.write_bytes(open(ckpts[1], "rb").read())  # same path, other weights
    capsys.readouterr()
    assert detect("--ckpt", model, "-o", out, *files) == 2
    err = capsys.readouterr().err
    assert "checkpoint_sha256" in err and "--overwrite" in err
    assert out.read_text() == before  # nothing mixed, nothing lost
    assert detect("--ckpt", model, "-o", out, "--overwrite", *files) == 0
    assert len(pd.read_csv(out)) == 3


@pytest.mark.parametrize("first, second, field", [
    ((), ("--window", "0.25"), "window"),
    (("--window", "0.25"), ("--window", "0.25", "--aggregate", "min"), "aggregate"),
    (("--window", "0.25"), ("--window", "0.25", "--hop", "0.125"), "hop"),
    (("--precision", "fp32"), ("--precision", "bf16"), "precision"),
    ((), ("--model", "tiny"), "model"),
])
def test_changed_score_options_are_refused(ckpts, files, tmp_path, capsys, first, second, field):
    out = tmp_path / "s.csv"
    before = finished_run(ckpts[0], out, files[:2], *first)
    capsys.readouterr()
    assert detect("--ckpt", ckpts[0], "-o", out, *second, *files[:2]) == 2
    assert f"{field}:" in capsys.readouterr().err
    assert out.read_text() == before


def test_other_adf_version_is_refused(ckpts, files, tmp_path, monkeypatch, capsys):
    import adf

    out = tmp_path / "s.csv"
    finished_run(ckpts[0], out, files[:2])
    monkeypatch.setattr(adf, "__version__", "99.0")
    assert detect("--ckpt", ckpts[0], "-o", out, *files) == 2
    assert "adf_version" in capsys.readouterr().err


def test_planted_partial_without_record_is_not_merged(ckpts, files, tmp_path, capsys):
    out = tmp_path / "s.csv"
    planted = f"id,path,logit_fake,logit_real,prob_real\nclip0,{files[0]},9.0,-9.0,1e-08\n"
    (tmp_path / "s.csv.partial").write_text(planted)
    assert detect("--ckpt", ckpts[0], "-o", out, *files) == 2
    assert "no run record" in capsys.readouterr().err
    assert not out.exists() and (tmp_path / "s.csv.partial").read_text() == planted


def test_output_of_an_older_adf_without_record_is_not_resumed(ckpts, files, tmp_path):
    out = tmp_path / "s.csv"
    finished_run(ckpts[0], out, files[:2])
    os.unlink(tmp_path / "s.csv.run.json")
    before = out.read_text()
    assert detect("--ckpt", ckpts[0], "-o", out, *files) == 2
    assert out.read_text() == before


def test_symlinked_partial_is_never_followed(ckpts, files, tmp_path, capsys):
    out = tmp_path / "s.csv"
    finished_run(ckpts[0], out, files[:2])  # a matching record exists
    os.unlink(out)
    target = tmp_path / "elsewhere.csv"
    planted = f"id,path,logit_fake,logit_real,prob_real\nclip0,{files[0]},9.0,-9.0,1e-08\n"
    target.write_text(planted)
    os.symlink(target, tmp_path / "s.csv.partial")
    assert detect("--ckpt", ckpts[0], "-o", out, *files[:2]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert target.read_text() == planted and not out.exists()
    # --overwrite replaces the link itself; the file it pointed to stays as it was
    assert detect("--ckpt", ckpts[0], "-o", out, "--overwrite", *files[:2]) == 0
    assert target.read_text() == planted
    assert 9.0 not in pd.read_csv(out)["logit_fake"].tolist()


def test_symlinked_record_is_refused(ckpts, files, tmp_path, capsys):
    out = tmp_path / "s.csv"
    finished_run(ckpts[0], out, files[:2])
    record = tmp_path / "s.csv.run.json"
    real = tmp_path / "real.json"
    os.replace(record, real)
    os.symlink(real, record)
    assert detect("--ckpt", ckpts[0], "-o", out, *files[:2]) == 2
    assert "symbolic link" in capsys.readouterr().err


def test_rows_of_inputs_not_given_are_refused(ckpts, files, tmp_path, capsys):
    out = tmp_path / "s.csv"
    before = finished_run(ckpts[0], out, files)
    capsys.readouterr()
    assert detect("--ckpt", ckpts[0], "-o", out, *files[:2]) == 2
    err = capsys.readouterr().err
    assert "1 input(s) not given" in err and files[2] in err
    assert out.read_text() == before


def test_same_run_resumes(ckpts, files, tmp_path, capsys):
    out = tmp_path / "s.csv"
    before = finished_run(ckpts[0], out, files, "--window", "0.25")
    capsys.readouterr()
    assert detect("--ckpt", ckpts[0], "-o", out, "--window", "0.25", *files) == 0
    assert "scored 0 input(s) (3 already scored)" in capsys.readouterr().out
    assert out.read_text() == before


def test_auto_precision_is_recorded_as_what_it_resolved_to(ckpts, files, tmp_path, monkeypatch, capsys):
    """`--precision auto` records the precision it chose, so the same output resumes
    under an explicit spelling of it, and a machine where auto chooses otherwise is refused."""
    from adf import precision as P

    monkeypatch.setattr(P, "cpu_native_bf16", lambda: (False, "test CPU"))
    out = tmp_path / "s.csv"
    finished_run(ckpts[0], out, files[:2], "--precision", "auto")
    assert json.loads((tmp_path / "s.csv.run.json").read_text())["options"]["precision"] == "fp32"
    capsys.readouterr()
    assert detect("--ckpt", ckpts[0], "-o", out, "--precision", "fp32", *files[:2]) == 0
    assert "2 already scored" in capsys.readouterr().out
    monkeypatch.setattr(P, "cpu_native_bf16", lambda: (True, "test CPU"))
    assert detect("--ckpt", ckpts[0], "-o", out, "--precision", "auto", *files[:2]) == 2
