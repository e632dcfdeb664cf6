"""Checkpoints by Hub name, with no network: caches built here in the Hub's own layout
(models--ORG--NAME/{blobs,refs,snapshots}) hold tiny models; huggingface_hub reads them
in offline mode. Also the released-model list."""
import hashlib
import os
import subprocess
import sys

import pandas as pd
import pytest
import soundfile as sf
import torch

import adf
from adf.checkpoints import CheckpointError, load_model, save_checkpoint
from adf.checkpoints.hub import parse_hub_name, resolve_checkpoint
from adf.models.classifier import build_classifier
from hub_cache import add_snapshot, use_offline_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMIT_A = "a" * 40
COMMIT_B = "b" * 40


def tiny_bytes(tmp_path, seed):
    torch.manual_seed(seed)
    path = tmp_path / f"tiny{seed}.safetensors"
    save_checkpoint(build_classifier("tiny"), path)
    return path.read_bytes()


@pytest.fixture
def weights(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("weights")
    return {seed: tiny_bytes(tmp, seed) for seed in (0, 1)}


@pytest.fixture
def offline_cache(tmp_path, monkeypatch, weights):
    """A Hub cache in tmp_path/hub with org/tiny: commit A (seed 0, tag v1) and commit B
    (seed 1, main), used offline."""
    cache = tmp_path / "hub"
    add_snapshot(cache, "org/tiny", COMMIT_A, {"model.safetensors": weights[0]}, refs=["v1"])
    add_snapshot(cache, "org/tiny", COMMIT_B, {"model.safetensors": weights[1]}, refs=["main"])
    use_offline_cache(monkeypatch, cache)
    return cache


def state(path):
    return load_model(path).state_dict()


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_hub_names_are_told_from_paths():
    assert parse_hub_name("nii-yamagishilab/mms-300m-anti-deepfake") == (
        "nii-yamagishilab/mms-300m-anti-deepfake", None)
    assert parse_hub_name("org/name@v1.0") == ("org/name", "v1.0")
    assert parse_hub_name(f"org/name@{COMMIT_A}") == ("org/name", COMMIT_A)
    for path in ("model.ckpt", "exp/model.ckpt", "exp/best.safetensors", "/abs/org/name", "a/b/c", "./org/name"):
        assert parse_hub_name(path) is None, path


def test_lookup_and_revision_pinning(offline_cache, tmp_path, weights):
    for seed in (0, 1):
        (tmp_path / f"{seed}.safetensors").write_bytes(weights[seed])
    expected = {seed: state(tmp_path / f"{seed}.safetensors") for seed in (0, 1)}
    assert not same_weights(expected[0], expected[1])
    main = resolve_checkpoint("org/tiny")
    assert main.startswith(str(offline_cache)) and COMMIT_B in main
    assert same_weights(state("org/tiny"), expected[1])  # main -> commit B
    assert same_weights(state("org/tiny@main"), expected[1])
    assert same_weights(state(f"org/tiny@{COMMIT_A}"), expected[0])  # pinned commit
    assert same_weights(state("org/tiny@v1"), expected[0])  # tag -> commit A


def test_offline_and_missing_names_the_repo_and_the_cache(offline_cache):
    for spec, at in (("org/absent", "org/absent@main"), (f"org/tiny@{'c' * 40}", f"org/tiny@{'c' * 40}"),
                     ("org/tiny@v2", "org/tiny@v2")):
        with pytest.raises(CheckpointError) as err:
            resolve_checkpoint(spec)
        message = str(err.value)
        assert at in message and str(offline_cache) in message and "HF_HUB_OFFLINE" in message, message


def test_damaged_cached_file_is_refused(offline_cache):
    snapshot = offline_cache / "models--org--tiny" / "snapshots" / COMMIT_B / "model.safetensors"
    blob = os.path.realpath(snapshot)
    with open(blob, "r+b") as fh:  # same size, one byte of a weight changed
        fh.seek(-3, os.SEEK_END)
        byte = fh.read(1)
        fh.seek(-3, os.SEEK_END)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(CheckpointError, match="damaged"):
        resolve_checkpoint("org/tiny")
    assert resolve_checkpoint(f"org/tiny@{COMMIT_A}")  # the other revision is intact


def test_local_paths_win_over_hub_names(offline_cache, tmp_path, monkeypatch, weights):
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "org" / "tiny"
    local.mkdir(parents=True)
    (local / "model.safetensors").write_bytes(weights[0])
    assert os.path.samefile(resolve_checkpoint("org/tiny"), local / "model.safetensors")
    assert same_weights(state("org/tiny"), state(local / "model.safetensors"))
    # a missing file path never turns into a Hub lookup: the reader's own error
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_model("org/model.ckpt")


def detect_cli(args, env):
    return subprocess.run([sys.executable, "-m", "adf", "detect", "--precision", "fp32", "--workers", "0", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT)


def test_adf_detect_honours_hf_home_and_hf_hub_offline(tmp_path, weights):
    """The environment variables as a user sets them, in a fresh process."""
    home = tmp_path / "hf_home"
    add_snapshot(home / "hub", "org/tiny", COMMIT_A, {"model.safetensors": weights[0]}, refs=["main"])
    (tmp_path / "local.safetensors").write_bytes(weights[0])
    clip = tmp_path / "clip.wav"
    sf.write(clip, torch.randn(8000, generator=torch.Generator().manual_seed(3)).numpy() * 0.1, 16000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=ROOT)
    by_name = detect_cli(["--ckpt", f"org/tiny@{COMMIT_A}", "-o", str(tmp_path / "hub.csv"), str(clip)], env)
    assert by_name.returncode == 0, by_name.stderr
    local = detect_cli(["--ckpt", str(tmp_path / "local.safetensors"), "-o", str(tmp_path / "local.csv"), str(clip)],
                       env)
    assert local.returncode == 0, local.stderr
    hub_rows, local_rows = (pd.read_csv(tmp_path / f"{n}.csv", dtype=str) for n in ("hub", "local"))
    assert hub_rows[["logit_fake", "logit_real"]].equals(local_rows[["logit_fake", "logit_real"]])
    missing = detect_cli(["--ckpt", "org/absent", "-o", str(tmp_path / "x.csv"), str(clip)], env)
    assert missing.returncode == 2
    assert "org/absent@main" in missing.stderr and str(home / "hub") in missing.stderr
    assert "HF_HUB_OFFLINE" in missing.stderr


def test_released_models_list(capsys):
    """The published repositories (names and sizes as in the authors' model table:
    github.com/nii-yamagishilab/AntiDeepfake README), each a registered architecture."""
    from adf.cli import main
    from adf.models.listing import released_rows

    published = {  # repository stem -> parameters in the authors' table
        "hubert-xlarge": 964e6, "wav2vec-small": 95e6, "wav2vec-large": 317e6, "mms-300m": 317e6,
        "mms-1b": 965e6, "xls-r-1b": 965e6, "xls-r-2b": 2.2e9,
    }
    rows = released_rows()
    repos = {r["repo"]: r for r in rows}
    assert len(rows) == 14
    for stem, params in published.items():
        for suffix, augmented in (("", True), ("-nda", False)):
            row = repos[f"nii-yamagishilab/{stem}-anti-deepfake{suffix}"]
            assert row["rawboost"] is augmented
            assert row["params"] == pytest.approx(params, rel=0.02)
            assert parse_hub_name(row["repo"]) == (row["repo"], None)
    assert repos["nii-yamagishilab/mms-300m-anti-deepfake"]["name"] == "mms_300m"
    assert main(["models", "--released", "--csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "repo,name,backbone,rawboost,params" and len(out) == 15
    assert "nii-yamagishilab/xls-r-2b-anti-deepfake-nda,xlsr_2b,XLS-R-2B,false," in "\n".join(out)


def test_from_pretrained_takes_hub_names(offline_cache, tmp_path, weights):
    (tmp_path / "a.safetensors").write_bytes(weights[0])
    detector = adf.Detector.from_pretrained(f"org/tiny@{COMMIT_A}", device="cpu", precision="fp32")
    assert same_weights(detector.model.state_dict(), state(tmp_path / "a.safetensors"))
    info = detector.info()
    assert info["sha256"] == hashlib.sha256(weights[0]).hexdigest()
    assert info["source"] == f"org/tiny@{COMMIT_A}" and info["name"] == "tiny" and info["input_policy"] == "whole"


def test_released_repository_names_pick_among_identical_architectures():
    """An MMS-300M file has W2V-Large's shapes (and XLS-R-1B's MMS-1B's): the repository
    name says which it is, where the weights cannot."""
    from adf.checkpoints.loading import Checkpoint, _choose_architecture
    from adf.checkpoints.released import released_model_name
    from adf.models.classifier import build_on_meta

    assert released_model_name("nii-yamagishilab/mms-300m-anti-deepfake") == "mms_300m"
    assert released_model_name(f"nii-yamagishilab/xls-r-1b-anti-deepfake-nda@{COMMIT_A}") == "xlsr_1b"
    assert released_model_name("org/tiny") is None and released_model_name("model.ckpt") is None
    shapes = Checkpoint("mms.safetensors", build_on_meta("w2v_large").state_dict(), "antideepfake")
    assert _choose_architecture(shapes, None, {})[0] == "w2v_large"  # the first identical name
    assert _choose_architecture(shapes, None, {}, "mms_300m")[0] == "mms_300m"
    assert _choose_architecture(shapes, None, {}, "xlsr_1b")[0] == "w2v_large"  # not identical: ignored
    assert _choose_architecture(shapes, "w2v_large", {}, "mms_300m")[0] == "w2v_large"  # --model wins
