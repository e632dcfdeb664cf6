"""Issue 16, class 3: outputs never destroy inputs, one writer per output,
`adf merge` never replaces good splits with empty ones, long names work."""
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from adf.atomic import ExclusiveLock, atomic_open, side_path
from adf.cli import main
from tests.synth import write_manifest


def clip(path, seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, (0.1 * np.random.default_rng(seed).standard_normal(8000)).astype("float32"), 16000)
    return str(path)


def detect(*argv):
    return main(["detect", "--workers", "0", *map(str, argv)])


def refused_without_damage(capsys, path, before, *argv):
    for extra in ((), ("--overwrite",)):
        assert detect(*argv, *extra) == 2
        err = capsys.readouterr().err
        assert "would overwrite the input" in err or "same file" in err
        assert "--overwrite" not in err  # it would destroy the input: never suggested
        with open(path, "rb") as fh:
            assert fh.read() == before


def test_output_equal_to_an_audio_input_is_refused(ckpt, tmp_path, capsys):
    audio = clip(tmp_path / "a" / "x.wav")
    before = open(audio, "rb").read()
    refused_without_damage(capsys, audio, before, "--ckpt", ckpt, "-o", audio, audio)
    # found by a folder walk, spelled another way
    refused_without_damage(capsys, audio, before, "--ckpt", ckpt, "-o", tmp_path / "a" / ".." / "a" / "x.wav",
                           tmp_path / "a")


def test_output_equal_to_the_manifest_or_checkpoint_is_refused(ckpt, tmp_path, capsys):
    audio = clip(tmp_path / "x.wav")
    man = write_manifest(tmp_path / "m.csv", [dict(ID="X-1", Path=audio)], Duration=0.5)
    before = open(man, "rb").read()
    refused_without_damage(capsys, man, before, "--ckpt", ckpt, "-o", man, man)
    model = tmp_path / "copy.ckpt"
    model.write_bytes(open(ckpt, "rb").read())
    refused_without_damage(capsys, model, model.read_bytes(), "--ckpt", model, "-o", model, audio)


def test_segments_equal_to_output_or_input_is_refused(ckpt, tmp_path, capsys):
    audio = clip(tmp_path / "x.wav")
    before = open(audio, "rb").read()
    refused_without_damage(capsys, audio, before, "--ckpt", ckpt, "-o", tmp_path / "s.csv", "--window", "0.25",
                           "--segments", audio, audio)
    assert detect("--ckpt", ckpt, "-o", tmp_path / "s.csv", "--window", "0.25",
                  "--segments", tmp_path / "s.csv", audio) == 2
    assert "same file as -o" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_second_writer_of_an_output_fails_clearly(ckpt, tmp_path, capsys):
    audio = clip(tmp_path / "x.wav")
    out = tmp_path / "s.csv"
    lock = ExclusiveLock(out)  # another run in progress
    try:
        assert detect("--ckpt", ckpt, "-o", out, audio) == 2
        assert "being written by another process" in capsys.readouterr().err
        assert not out.exists() and not os.path.exists(side_path(out, ".partial"))
    finally:
        lock.release()
    assert detect("--ckpt", ckpt, "-o", out, audio) == 0
    assert len(pd.read_csv(out)) == 1
    assert not os.path.exists(side_path(out, ".lock"))


def test_output_in_a_new_folder_still_works(ckpt, tmp_path):
    audio = clip(tmp_path / "x.wav")
    out = tmp_path / "new" / "deeper" / "s.csv"
    assert detect("--ckpt", ckpt, "-o", out, audio) == 0
    assert pd.read_csv(out)["id"].tolist() == ["x"]


def test_lock_is_exclusive_and_reusable(tmp_path):
    from adf.atomic import LockedError

    first = ExclusiveLock(tmp_path / "o.csv")
    with pytest.raises(LockedError):
        ExclusiveLock(tmp_path / "o.csv")
    first.release()
    ExclusiveLock(tmp_path / "o.csv").release()


def test_long_output_names_work(ckpt, tmp_path):
    audio = clip(tmp_path / "x.wav")
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    out = tmp_path / ("s" * (limit - 4) + ".csv")  # the longest legal name
    with atomic_open(out) as fh:  # before: the temporary name was too long (ENAMETOOLONG)
        fh.write("x\n")
    os.unlink(out)
    assert detect("--ckpt", ckpt, "-o", out, "--window", "0.25", "--segments", out.with_name("g" * limit),
                  audio) == 0
    assert pd.read_csv(out)["id"].tolist() == ["x"]
    assert len(pd.read_csv(out.with_name("g" * limit))) == 2
    # side files get a shortened name of their own, one per output
    assert side_path(out, ".partial") != side_path(out.with_name("t" * (limit - 4) + ".csv"), ".partial")
    assert all(len(n) <= limit for n in os.listdir(tmp_path))


@pytest.fixture
def merged(tmp_path):
    """Good train/valid/test.csv from a first merge."""
    d = tmp_path / "manifests"
    d.mkdir()
    write_manifest(d / "A.csv", [dict(ID=f"A-{k}", Label="real" if k % 2 else "fake", Path=f"/data/a{k}.wav",
                                      Proportion="valid" if k < 2 else "train") for k in range(6)], Duration=0.5)
    write_manifest(d / "T.csv", [dict(ID=f"T-{k}", Label="real" if k % 2 else "fake", Path=f"/data/t{k}.wav")
                                 for k in range(4)], Duration=0.5)
    out = tmp_path / "out"
    assert main(["merge", "--manifests", str(d), "--out", str(out), "--train", "A", "--test", "T"]) == 0
    return d, out, {n: (out / n).read_text() for n in ("train.csv", "valid.csv", "test.csv")}


def test_merge_with_mistyped_manifests_fails_and_keeps_the_splits(merged, tmp_path, capsys):
    _, out, before = merged
    assert main(["merge", "--manifests", str(tmp_path / "manifest"), "--out", str(out),
                 "--train", "A", "--test", "T"]) == 2
    assert "none of the 2 manifests exists" in capsys.readouterr().err
    assert {n: (out / n).read_text() for n in before} == before


def test_merge_never_writes_a_fed_split_empty(merged, capsys):
    d, out, before = merged
    assert main(["merge", "--manifests", str(d), "--out", str(out), "--train", "A", "--test", "Gone"]) == 2
    err = capsys.readouterr().err
    assert "test.csv would be empty" in err and "Traceback" not in err
    assert {n: (out / n).read_text() for n in before} == before
    assert main(["merge", "--manifests", str(d), "--out", str(out), "--train", "A", "--test", "Gone",
                 "--allow-empty"]) == 0
    assert len(pd.read_csv(out / "test.csv")) == 0
    # a split no manifest is meant to feed (an evaluation-only merge) is written empty as before
    assert main(["merge", "--manifests", str(d), "--out", str(out), "--train", "--test", "T"]) == 0
    assert len(pd.read_csv(out / "train.csv")) == 0 and len(pd.read_csv(out / "test.csv")) == 4
