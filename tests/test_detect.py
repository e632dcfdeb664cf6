"""`adf detect` end to end with the tiny model and generated audio."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from adf.audio import load_for_model
from adf.checkpoints import load_model
from adf.cli import main
from tests.synth import ROOT, write_manifest, write_noise

REPO = str(ROOT)


def expected_logits(ckpt, path, start=0, stop=None):
    """Independent scoring: the checkpoint's model on load_for_model, one file, no batching."""
    with torch.inference_mode():
        return load_model(ckpt)(load_for_model(path, start, stop)[None])[0].tolist()


def detect(*argv):
    argv = [str(a) for a in argv]
    if "--precision" not in argv:  # exact comparisons against fp32 references, on any CPU
        argv += ["--precision", "fp32"]
    return main(["detect", *argv])


def test_mixed_inputs_bad_files_and_columns(ckpt, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    write_noise(data / "a" / "stereo.wav", 0.6, 44100, channels=2, seed=1)
    write_noise(data / "a" / "low.flac", 0.9, 8000, seed=2)
    write_noise(data / "b" / "low.wav", 0.5, 16000, seed=3)  # stem collides with a/low.flac
    (data / "b" / "empty.wav").write_bytes(b"")
    (data / "b" / "corrupt.wav").write_bytes(b"RIFF" + b"\x00junk" * 50)
    sf.write(data / "b" / "zero.wav", np.zeros(0, dtype="float32"), 16000)
    (data / "b" / "notes.txt").write_text("not audio")
    write_noise(tmp_path / "single.ogg", 0.7, 22050, seed=4)
    corpus = tmp_path / "corpus"
    real = write_noise(corpus / "r.wav", 0.8, 16000, seed=5)
    man = write_manifest(tmp_path / "test.csv", [dict(ID="C-r", Label="real", Path="$ROOT/r.wav"),
                                                 dict(ID="C-gone", Label="fake", Path="$ROOT/gone.wav")])

    rc = detect("--ckpt", ckpt, "-o", "out.csv", "--workers", 1, "--batch-size", 3, "--ids", "path",
                "--data-root", corpus, "data", "single.ogg", man)
    err = capsys.readouterr()
    assert rc == 0
    out = pd.read_csv("out.csv", dtype={"id": str})
    assert list(out.columns) == ["id", "path", "logit_fake", "logit_real", "prob_real", "label"]
    got = dict(zip(out["id"], out["path"]))
    files = [os.path.join("data", "a", "stereo.wav"), os.path.join("data", "a", "low.flac"),
             os.path.join("data", "b", "low.wav"), "single.ogg"]
    assert got == {**{f: f for f in files}, "C-r": real}
    labels = dict(zip(out["id"], out["label"]))
    assert labels["C-r"] == 1 and all(pd.isna(labels[k]) for k in files)
    for row in out.itertuples():
        assert [row.logit_fake, row.logit_real] == pytest.approx(expected_logits(ckpt, row.path), abs=1e-5)
        assert row.prob_real == pytest.approx(1 / (1 + np.exp(row.logit_fake - row.logit_real)))
    for name, reason in [("empty.wav", "empty (0 bytes)"), ("corrupt.wav", "cannot decode"),
                         ("zero.wav", "no audio samples"), ("gone.wav", "does not exist")]:
        assert any(name in line and reason in line for line in err.err.splitlines()), name
    assert "scored 5 input(s), skipped 4" in err.out
    assert not os.path.exists("out.csv.partial")


def test_manifest_segments(ckpt, tmp_path, audio_writer, manifest_builder):
    path = audio_writer("long.wav", 2.0, 8000)
    man = manifest_builder("m.csv", [dict(ID="L-1", Label="fake", Path=path, Start=0, Stop=8000),
                                     dict(ID="L-2", Label="real", Path=path, Start=8000, Stop=16000)])
    assert detect("--ckpt", ckpt, "-o", tmp_path / "o.csv", "--workers", 0, man) == 0
    out = pd.read_csv(tmp_path / "o.csv").set_index("id")
    assert out.loc["L-1", "label"] == 0 and out.loc["L-2", "label"] == 1
    for key, (a, b) in {"L-1": (0, 8000), "L-2": (8000, 16000)}.items():
        got = out.loc[key, ["logit_fake", "logit_real"]].tolist()
        assert got == pytest.approx(expected_logits(ckpt, path, a, b), abs=1e-5)


def test_resume_scores_only_the_rest(ckpt, tmp_path, capsys):
    files = [write_noise(tmp_path / f"{k}.wav", 0.3 + 0.1 * k, 16000, seed=k) for k in range(4)]
    out = tmp_path / "out.csv"
    # A run of the same command leaves its record (out.csv.run.json) ...
    assert detect("--ckpt", ckpt, "-o", out, "--workers", 0, *files) == 0
    out.unlink()
    capsys.readouterr()
    # ... and is interrupted: two rows saved in the side file, the third cut off mid-line.
    # The saved rows hold sentinel logits, which a re-score would overwrite.
    (tmp_path / "out.csv.partial").write_text(
        "id,path,logit_fake,logit_real,prob_real\n"
        f"0,{files[0]},7.0,9.0,0.8807970779778823\n"
        f"2,{files[2]},5.0,5.0,0.5\n"
        f"1,{files[1]},0.12")
    rc = detect("--ckpt", ckpt, "-o", out, "--workers", 0, *files)
    assert rc == 0
    assert "scored 2 input(s) (2 already scored)" in capsys.readouterr().out
    final = pd.read_csv(out, dtype={"id": str})
    assert list(final["id"]) == ["0", "1", "2", "3"]  # input order
    assert final.loc[0, "logit_real"] == 9.0 and final.loc[2, "logit_fake"] == 5.0
    for k in (1, 3):
        assert final.loc[k, ["logit_fake", "logit_real"]].tolist() == pytest.approx(
            expected_logits(ckpt, files[k]), abs=1e-5)
    assert not (tmp_path / "out.csv.partial").exists()
    # A finished output: nothing left to do, nothing rescored, still success.
    assert detect("--ckpt", ckpt, "-o", out, "--workers", 0, *files) == 0
    assert "scored 0 input(s) (4 already scored)" in capsys.readouterr().out
    assert pd.read_csv(out, dtype={"id": str}).equals(final)
    # --overwrite starts afresh.
    assert detect("--ckpt", ckpt, "-o", out, "--workers", 0, "--overwrite", *files) == 0
    assert pd.read_csv(out).loc[0, "logit_real"] != 9.0


def test_exit_codes(ckpt, tmp_path, capsys):
    good = write_noise(tmp_path / "good.wav", 0.5, 16000)
    (tmp_path / "empty.wav").write_bytes(b"")
    bad = str(tmp_path / "empty.wav")
    assert detect("--ckpt", ckpt, "-o", tmp_path / "x.csv", "--workers", 0, bad) != 0
    assert detect("--ckpt", ckpt, "-o", tmp_path / "y.csv", "--workers", 0, good, bad) == 0
    assert detect("--ckpt", ckpt, "-o", tmp_path / "z.csv", "--workers", 0, "--strict", good, bad) != 0
    assert detect("--ckpt", ckpt, "-o", tmp_path / "w.csv", "--precision", "fp16", "--device", "cpu",
                  good) != 0
    assert "fp16 needs a CUDA device" in capsys.readouterr().err
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"")
    assert detect("--ckpt", broken, "-o", tmp_path / "v.csv", good) != 0
    assert "broken.ckpt: the file is empty" in capsys.readouterr().err
    assert not (tmp_path / "v.csv").exists() and not (tmp_path / "v.csv.partial").exists()
    assert detect("--ckpt", ckpt, "--model", "nonesuch", "-o", tmp_path / "u.csv", good) != 0
    assert "nonesuch" in capsys.readouterr().err
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("a,b\n1,2\n")
    assert detect("--ckpt", ckpt, "-o", foreign, good) != 0
    assert foreign.read_text() == "a,b\n1,2\n"


def test_windows_and_segments_csv(ckpt, tmp_path):
    sr = 16000
    rng = np.random.default_rng(7)
    tone = 0.3 * np.sin(2 * np.pi * 300 * np.arange(sr) / sr)
    path = str(tmp_path / "spliced.wav")
    sf.write(path, np.concatenate([0.1 * rng.standard_normal(sr), tone]).astype("float32"), sr)
    short = write_noise(tmp_path / "short.wav", 0.4, sr)
    seg = tmp_path / "seg.csv"
    assert detect("--ckpt", ckpt, "-o", tmp_path / "o.csv", "--workers", 0, "--window", 1, "--hop", 0.5,
                  "--aggregate", "min", "--segments", seg, path, short) == 0
    windows = pd.read_csv(seg)
    assert list(windows.columns) == ["id", "path", "start", "end", "logit_fake", "logit_real", "prob_real"]
    spliced = windows[windows["id"] == "spliced"]
    assert spliced["start"].tolist() == [0.0, 0.5, 1.0] and spliced["end"].tolist() == [1.0, 1.5, 2.0]
    assert windows[windows["id"] == "short"][["start", "end"]].values.tolist() == [[0.0, 0.4]]
    utt = pd.read_csv(tmp_path / "o.csv").set_index("id")
    margin = spliced["logit_real"] - spliced["logit_fake"]
    worst = spliced.loc[margin.idxmin()]
    assert utt.loc["spliced", ["logit_fake", "logit_real"]].tolist() == [worst["logit_fake"], worst["logit_real"]]


def test_console_entry_point(ckpt, tmp_path):
    """`python -m adf detect` with decoding in a worker process."""
    clip = write_noise(tmp_path / "clip.wav", 0.5, 16000)
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run([sys.executable, "-m", "adf", "detect", "--ckpt", ckpt, "-o", "s.csv",
                             "--workers", "1", "--precision", "fp32", "clip.wav"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(tmp_path / "s.csv")
    assert out["path"].tolist() == ["clip.wav"] and out["id"].tolist() == ["clip"]
    assert out.loc[0, ["logit_fake", "logit_real"]].tolist() == pytest.approx(
        expected_logits(ckpt, clip), abs=1e-5)


def interrupt_after(monkeypatch, count):
    """Make the scoring engine raise KeyboardInterrupt (a Ctrl-C) after `count`
    results; returns the real engine, to put back."""
    import adf.inference

    real_score_items = adf.inference.score_items

    def stops(*args, **kwargs):
        for n, score in enumerate(real_score_items(*args, **kwargs)):
            if n == count:
                raise KeyboardInterrupt
            yield score

    monkeypatch.setattr(adf.inference, "score_items", stops)
    return real_score_items


def test_interrupted_run_keeps_finished_rows(ckpt, tmp_path, monkeypatch, capsys):
    """A run stopped after two inputs leaves them in the side file and no output;
    the re-run scores only the other two and writes the complete output."""
    import adf.inference

    files = [write_noise(tmp_path / f"{k}.wav", 0.3, 16000, seed=k) for k in range(4)]
    out = tmp_path / "out.csv"
    real_score_items = interrupt_after(monkeypatch, 2)
    assert detect("--ckpt", ckpt, "-o", out, "--workers", 0, "--batch-size", 1, *files) == 130
    assert not out.exists()
    saved = pd.read_csv(tmp_path / "out.csv.partial", dtype={"id": str})
    assert len(saved) == 2
    monkeypatch.setattr(adf.inference, "score_items", real_score_items)
    capsys.readouterr()
    assert detect("--ckpt", ckpt, "-o", out, "--workers", 0, *files) == 0
    assert "scored 2 input(s) (2 already scored)" in capsys.readouterr().out
    final = pd.read_csv(out, dtype={"id": str})
    assert list(final["id"]) == ["0", "1", "2", "3"]
    for row in final.itertuples():
        assert [row.logit_fake, row.logit_real] == pytest.approx(expected_logits(ckpt, row.path), abs=1e-5)


def test_collect_items_order_and_unique_ids(tmp_path, monkeypatch):
    from adf.detect import DuplicateIds, collect_items

    monkeypatch.chdir(tmp_path)
    for name in ("d1/x.wav", "d1/sub/y.flac", "d2/x.wav", "d2/y.wav", "z.wav"):
        write_noise(tmp_path / name, 0.1, 16000)
    man = write_manifest(tmp_path / "m.csv", [dict(ID="M-1", Label="fake", Path=str(tmp_path / "z.wav"))])
    items, problems = collect_items([man, "d1", "d2", "z.wav", "d1/x.wav"], ids="path")
    assert problems == []
    assert [(i.id, i.path, i.label) for i in items] == [
        ("M-1", str(tmp_path / "z.wav"), 0),
        ("d1/sub/y.flac", "d1/sub/y.flac", None),  # folders are walked in sorted order
        ("d1/x.wav", "d1/x.wav", None),
        ("d2/x.wav", "d2/x.wav", None),
        ("d2/y.wav", "d2/y.wav", None),
        ("z.wav", "z.wav", None),  # listed twice: scored once
    ]
    items, problems = collect_items(["d1", "z.wav"])
    assert [(i.id, i.path) for i in items] == [("y", "d1/sub/y.flac"), ("x", "d1/x.wav"), ("z", "z.wav")]
    other = write_manifest(tmp_path / "other.csv", [dict(ID="M-1", Label="real", Path=str(tmp_path / "d2/y.wav"))])
    items, problems = collect_items([man, man])
    assert [i.id for i in items] == ["M-1"]
    with pytest.raises(DuplicateIds, match=f"id 'M-1' of {tmp_path}/d2/y.wav is already the id of {tmp_path}/z.wav"):
        collect_items([man, other])
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert collect_items([str(empty)]) == ([], [f"{empty}: folder holds no audio files"])
