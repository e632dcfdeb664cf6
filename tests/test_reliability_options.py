"""Issue 16, class 6: options, configs and files are checked up front; a user
error is one line naming the problem, exit status 2, no traceback unless --debug."""
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch

from adf.checkpoints import CheckpointError, load_model
from adf.checkpoints.files import read_file
from adf.cli import main
from adf.data.manifest import COLUMNS, read_manifest
from adf.models.classifier import build_classifier
from tests.synth import ROOT


@pytest.fixture
def audio(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, (0.1 * np.random.default_rng(0).standard_normal(16000)).astype("float32"), 16000)
    return str(path)


def detect(*argv):
    return main(["detect", "--workers", "0", *map(str, argv)])


def test_bad_segment_columns_are_row_problems(audio, manifest_builder):
    man = manifest_builder("m.csv", [dict(ID=i, Path=audio, Start=a, Stop=b) for i, a, b in [
        ("ok", 0, 8000), ("whole", "", ""), ("typo", "8OOO", 16000), ("neg", -5, 100), ("back", 9000, 100),
        ("frac", 1.5, 100)]])
    df, problems = read_manifest(man, on_error="skip")
    assert list(df["ID"]) == ["ok", "whole"]  # before: the bad rows were scored as whole files
    assert list(df["Start"]) == [0, -1] and list(df["Stop"]) == [8000, -1]
    text = "\n".join(problems)
    assert "row 4, column Start" in text and "'8OOO'" in text
    assert "row 5, column Start" in text and "row 6, column Stop" in text and "row 7, column Start" in text


def test_unparseable_start_is_not_scored_as_the_whole_file(ckpt, audio, tmp_path, manifest_builder, capsys):
    man = manifest_builder("m.csv", [dict(ID="typo", Path=audio, Start="abc", Stop=8000)])
    assert detect("--ckpt", ckpt, "-o", tmp_path / "s.csv", man) == 2
    assert "column Start" in capsys.readouterr().err


@pytest.mark.parametrize("options, message", [
    (("--window", "1", "--hop", "2"), "--hop 2 is longer than --window 1"),
    (("--window", "0.01"), "shorter than the model's receptive field (0.025 s)"),
    (("--device", "gpu"), "unknown device 'gpu'"),
    (("--device", "tpu"), "unknown device"),
    (("--min-rate", "8000", "--max-rate", "4000"), "--min-rate and --max-rate"),
])
def test_bad_detect_options_fail_before_any_work(ckpt, audio, tmp_path, capsys, options, message):
    out = tmp_path / "s.csv"
    assert detect("--ckpt", ckpt, "-o", out, *options, audio) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "s.csv.partial").exists()


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1", "x"])
def test_window_must_be_a_finite_positive_number(ckpt, audio, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_:
        detect("--ckpt", ckpt, "-o", tmp_path / "s.csv", "--window", value, audio)
    assert exit_.value.code == 2
    assert "--window" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_device_without_a_gpu(ckpt, audio, tmp_path, capsys):
    assert detect("--ckpt", ckpt, "-o", tmp_path / "s.csv", "--device", "cuda", audio) == 2
    assert "no CUDA GPU is usable here" in capsys.readouterr().err


def run_train(*argv, env=None):
    return subprocess.run([sys.executable, str(ROOT / "recipes/posttrain/train.py"), *map(str, argv)],
                          capture_output=True, text=True, cwd=ROOT / "recipes/posttrain",
                          env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})), timeout=600)


def test_unknown_hparams_keys_are_errors_with_close_matches(tmp_path):
    from adf.hparams_check import check_hparams

    text = (ROOT / "recipes/posttrain/hparams/tiny.yaml").read_text()
    with pytest.raises(ValueError, match=r"override.*lrr \(did you mean lr\?\)"):
        check_hparams(text, "lrr: 0.1", "tiny.yaml")
    with pytest.raises(ValueError, match=r"tiny.yaml: unknown key\(s\): num_worker \(did you mean num_workers"):
        check_hparams(text + "\nnum_worker: 3\n", "", "tiny.yaml")
    check_hparams("my_dim: 4\nseed: !ref <my_dim>\n", "seed: 3", "x.yaml")  # referenced by a known key: fine
    # before: silently ignored
    bad = tmp_path / "typo.yaml"
    bad.write_text(text + "\nlerning_rate: 0.001\n")
    result = run_train(bad, "--output_folder", tmp_path / "exp")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "unknown key(s): lerning_rate" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "exp").exists()


def test_shipped_hparams_pass_and_code_keys_are_complete():
    from adf.hparams_check import CODE_KEYS, check_hparams

    for path in ROOT.glob("recipes/*/hparams/*.yaml"):
        check_hparams(path.read_text(), "", path)
    read = set()
    for source in [*ROOT.glob("adf/*.py"), *ROOT.glob("adf/*/*.py")]:
        text = source.read_text()
        read |= set(re.findall(r"hparams(?:\.get\(|\[)\"(\w+)\"", text))
        read |= set(re.findall(r"getattr\(self\.hparams, \"(\w+)\"", text))
        read |= set(re.findall(r"self\.hparams\.(\w+)", text))
    assert read <= CODE_KEYS, sorted(read - CODE_KEYS)


def test_header_only_training_manifest_is_one_line(tmp_path):
    header = tmp_path / "train.csv"
    header.write_text(",".join(COLUMNS) + "\n")
    result = run_train("hparams/tiny.yaml", "--train_csv", header, "--valid_csv", header,
                       "--output_folder", tmp_path / "exp", "--device", "cpu")
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"{header}: no usable rows" in result.stderr and "Traceback" not in result.stderr


def test_bad_merge_config_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("train: egs\ntest: []\n")  # before: iterated over the letters of "egs"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-m", "adf", "merge", "--config", str(bad), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        f"adf merge: error: {bad}: train must be a list of corpus names or `paper` (got 'egs')"]
    typo = tmp_path / "t.yaml"
    typo.write_text("trian: [egs]\n")
    run = subprocess.run([sys.executable, "-m", "adf", "--debug", "merge", "--config", str(typo), "--out",
                          str(tmp_path / "o")], capture_output=True, text=True, env=env)
    assert run.returncode != 0 and "Traceback" in run.stderr and "trian (did you mean train?)" in run.stderr


def test_integer_weights_are_refused(tmp_path):
    torch.manual_seed(0)
    model = build_classifier("tiny")
    state = {k: (v.round().to(torch.int64) if k == "proj_fc.weight" else v) for k, v in model.state_dict().items()}
    path = tmp_path / "int.ckpt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"not floating-point: proj_fc.weight int64"):
        load_model(path, model_name="tiny")


def test_zip_named_safetensors(tmp_path, ckpt):
    archive = tmp_path / "model.safetensors"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "not a model")
    with pytest.raises(CheckpointError, match="a zip archive but not a PyTorch checkpoint"):
        read_file(archive)  # before: a raw SafetensorError traceback
    torch_zip = tmp_path / "torch.safetensors"
    torch.save(build_classifier("tiny").state_dict(), torch_zip)
    with pytest.raises(CheckpointError, match="named .safetensors but holds a PyTorch"):
        read_file(torch_zip)


def test_fifo_and_unreadable_checkpoints(tmp_path, audio, capsys, monkeypatch, ckpt):
    fifo = tmp_path / "pipe.ckpt"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="FIFO"):  # before: "no such checkpoint file"
        read_file(fifo)
    assert detect("--ckpt", fifo, "-o", tmp_path / "s.csv", audio) == 2  # before: hung hashing the FIFO
    assert "FIFO" in capsys.readouterr().err
    locked = tmp_path / "locked.ckpt"
    locked.write_bytes(open(ckpt, "rb").read())
    os.chmod(locked, 0)
    try:
        if os.access(locked, os.R_OK):  # root reads anything: pretend it may not
            real_access = os.access
            monkeypatch.setattr(os, "access", lambda p, m: False if str(p) == str(locked) else real_access(p, m))
        with pytest.raises(CheckpointError, match="permission denied"):
            read_file(locked)
    finally:
        os.chmod(locked, 0o644)


def test_refused_pickle_is_named_refused_not_corrupt(tmp_path):
    # INST opcode (protocol 0 object creation): outside the weights-only subset
    evil = tmp_path / "evil.pt"
    evil.write_bytes(b"\x80\x02(ios\nsystem\nX\x04\x00\x00\x00echoq\x01o.")
    with pytest.raises(CheckpointError, match="refused to unpickle") as err:
        read_file(evil)
    assert "corrupt" not in str(err.value)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(b"\x80\x02}q\x00(X")  # a truncated pickle is corrupt, not refused
    with pytest.raises(CheckpointError, match="corrupt"):
        read_file(cut)


def test_user_errors_exit_2_without_traceback_unless_debug(tmp_path, audio):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    missing = tmp_path / "missing.ckpt"
    args = [sys.executable, "-m", "adf", "detect", "--ckpt", str(missing), "-o", str(tmp_path / "s.csv"), audio]
    run = subprocess.run(args, capture_output=True, text=True, env=env)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"{missing}: no such checkpoint file" in run.stderr
