"""Crash safety: a real training run killed with SIGKILL mid-epoch resumes exactly.

Three real runs of `adf.train.main` (through tests/train_probe.py): an
uninterrupted reference, a run killed with `kill -9` after it wrote an
intra-epoch checkpoint, and a rerun of the killed command. The rerun must pick
up at the checkpoint's optimizer step and then see the same batches (IDs and
audio, random crops included) and end with the same weights as the reference.
Dropout and layer drop are on, so the RNG state must be restored too.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.synth import ROOT, toy_corpus

REPO = str(ROOT)
TINY = os.path.join(REPO, "recipes", "posttrain", "hparams", "tiny.yaml")
STEPS = 14  # about 1.5 epochs of the toy corpus
EVERY = 3   # intra-epoch checkpoint interval (optimizer steps)


def hparams_with_dropout(tmp_path):
    text = open(TINY, encoding="utf-8").read()
    marker = "    name: !ref <model_name>\n"
    assert marker in text
    text = text.replace(marker, marker + "    encoder_dropout: 0.1\n    encoder_layer_drop: 0.1\n")
    path = tmp_path / "tiny_dropout.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def command(hparams, root, exp, record):
    return [sys.executable, os.path.join(REPO, "tests", "train_probe.py"), str(record), hparams,
            "--data_folder", str(root), "--manifest_folder", str(root / "data"),
            "--output_folder", str(exp), "--device", "cpu", "--noprogressbar",
            "--max_batch_seconds", "3", "--num_buckets", "4", "--optimizer_step_limit", str(STEPS),
            "--number_of_epochs", "3", "--warmup_steps", "2",
            "--crop_max_seconds", "1.0", "--crop_min_seconds", "0.7",  # toy clips are 0.6-1.4 s
            "--ckpt_interval_steps", str(EVERY)]


def start(cmd, sleep=0.0):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1", ADF_PROBE_BATCH_SLEEP=str(sleep))
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc):
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-5000:]
    return out


def complete_intra_epoch_checkpoints(save):
    found = []
    for name in os.listdir(save) if save.exists() else []:
        meta = save / name / "CKPT.yaml"
        if (save / name / "complete.ckpt").exists() and meta.exists():
            if yaml.safe_load(meta.read_text()).get("end-of-epoch") is False:
                found.append(save / name)
    return found


@pytest.mark.slow
def test_sigkilled_run_resumes_from_its_intra_epoch_checkpoint_exactly(tmp_path):
    toy_corpus(tmp_path, (24, 6, 2))
    hparams = hparams_with_dropout(tmp_path)
    ref_exp, exp = tmp_path / "ref", tmp_path / "exp"

    reference = start(command(hparams, tmp_path, ref_exp, tmp_path / "rec_ref"))
    victim = start(command(hparams, tmp_path, exp, tmp_path / "rec_killed"), sleep=0.4)
    deadline = time.time() + 240
    while not complete_intra_epoch_checkpoints(exp / "save"):
        assert victim.poll() is None, victim.communicate()[0][-5000:]
        assert time.time() < deadline, "no intra-epoch checkpoint appeared"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "rec_killed").exists()  # it really died before finishing

    # A checkpoint the kill interrupted: newest, meta written, files missing. Resume must skip it.
    good = max(complete_intra_epoch_checkpoints(exp / "save"), key=lambda p: p.stat().st_mtime)
    partial = exp / "save" / "CKPT+9999-12-31+23-59-59+00"
    partial.mkdir()
    meta = yaml.safe_load((good / "CKPT.yaml").read_text())
    meta["unixtime"] = meta["unixtime"] + 3600
    (partial / "CKPT.yaml").write_text(yaml.safe_dump(meta))
    (partial / "model.ckpt").write_bytes(b"truncated")
    saved_step = yaml.safe_load((good / "brain.ckpt").read_text())["optimizer_step"]

    out = finish(start(command(hparams, tmp_path, exp, tmp_path / "rec_resumed")))
    finish(reference)
    ref = json.loads((tmp_path / "rec_ref" / "rank0.json").read_text())
    res = json.loads((tmp_path / "rec_resumed" / "rank0.json").read_text())

    resumed_at = res["batches"][0][0]
    assert f"resumed from {good}" in out
    assert resumed_at == saved_step
    assert resumed_at > 0 and resumed_at % EVERY == 0 and resumed_at < STEPS
    # The batches after the checkpoint: same steps, same clips, same cropped audio.
    tail = [b for b in ref["batches"] if b[0] >= resumed_at]
    assert res["batches"] == tail
    assert res["batches"][-1][0] == STEPS - 1
    # Same optimizer state, schedule and dropout draws: bit-identical final weights.
    assert res["weights_end"] == ref["weights_end"]
    assert res["weights_start"] != ref["weights_end"]
