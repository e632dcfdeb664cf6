"""The Python API (adf.Detector): the numbers of `adf detect` on the same files, arrays
scored as the files they were read from, bad inputs reported per input, and the README's
example run as written."""
import os
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from adf import Detector
from adf.cli import main
from hub_cache import add_snapshot, use_offline_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def noise(path, seconds, sr, channels=1, seed=0, subtype=None):
    rng = np.random.default_rng(seed)
    data = (0.1 * rng.standard_normal((int(seconds * sr), channels))).astype("float32")
    sf.write(path, data if channels > 1 else data[:, 0], sr, subtype=subtype)
    return str(path)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return [noise(folder / "a.wav", 0.6, 16000, seed=1),
            noise(folder / "b.flac", 0.9, 44100, channels=2, seed=2),
            noise(folder / "c.wav", 0.4, 8000, seed=3, subtype="PCM_16"),
            noise(folder / "d.ogg", 1.3, 22050, seed=4)]


@pytest.fixture(scope="module")
def detector(ckpt):
    return Detector.from_pretrained(ckpt, device="cpu", precision="fp32")


def detect_rows(tmp_path, ckpt, *args):
    out = tmp_path / "scores.csv"
    assert main(["detect", "--ckpt", ckpt, "-o", str(out), "--precision", "fp32", "--workers", "0",
                 "--overwrite", *map(str, args)]) == 0
    return pd.read_csv(out, dtype=str, keep_default_na=False)


def exact(text):
    return float(text)  # the score CSV writes repr(): the float itself, not pandas' rounding parser


def test_score_equals_adf_detect(detector, ckpt, clips, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + b"\x00junk" * 20)
    rows = detect_rows(tmp_path, ckpt, "--batch-size", 3, *clips, bad)
    records = detector.score(clips + [str(bad)], batch_size=3)
    assert [r["id"] for r in records] == ["a", "b", "c", "d", "bad"]
    assert records[-1]["error"].startswith("cannot decode audio") and records[-1]["prob_real"] is None
    by_id = {row["id"]: row for _, row in rows.iterrows()}
    assert set(by_id) == {"a", "b", "c", "d"}
    for record in records[:-1]:
        row = by_id[record["id"]]
        assert record["path"] == row["path"] and record["error"] is None
        for column in ("logit_fake", "logit_real", "prob_real"):
            assert record[column] == exact(row[column]), (record["id"], column)


def test_windows_equal_adf_detect_segments(detector, ckpt, clips, tmp_path):
    segments = tmp_path / "windows.csv"
    rows = detect_rows(tmp_path, ckpt, "--window", 0.5, "--hop", 0.25, "--aggregate", "min", "--segments",
                       segments, clips[3])
    windows = pd.read_csv(segments, dtype=str)
    got = detector.segments(clips[3], window=0.5, hop=0.25)
    assert len(got) == len(windows) == 5
    for window, (_, row) in zip(got, windows.iterrows()):
        for column in ("start", "end", "logit_fake", "logit_real", "prob_real"):
            assert window[column] == exact(row[column]), column
    (record,) = detector.score(clips[3], window=0.5, hop=0.25, aggregate="min")
    assert record["logit_real"] == exact(rows["logit_real"][0]) and record["windows"] == got


def test_arrays_score_as_the_files_they_came_from(detector, clips):
    files = detector.score(clips)
    arrays, rates = zip(*(sf.read(path, dtype="float32") for path in clips))
    for path, record in zip(clips, files):
        data, rate = sf.read(path, dtype="float32")
        (got,) = detector.score([data], sample_rate=rate)
        assert got["id"] == "0" and got["path"] is None
        assert (got["logit_fake"], got["logit_real"]) == (record["logit_fake"], record["logit_real"]), path
    pcm, rate = sf.read(clips[2], dtype="int16")  # integer PCM is scaled as soundfile scales it
    (got,) = detector.score(pcm, sample_rate=rate)
    assert got["logit_real"] == files[2]["logit_real"]
    import torch

    (got,) = detector.score([torch.from_numpy(arrays[1])], sample_rate=rates[1])  # torch tensors too
    assert got["logit_real"] == files[1]["logit_real"]


def test_score_waveforms_batches_16k_audio(detector, clips):
    waveforms = [sf.read(path, dtype="float32")[0] for path in clips[:1]] * 2 + [np.zeros(0, "float32")]
    records = detector.score_waveforms(waveforms)
    files = detector.score(clips[:1])
    assert [r["id"] for r in records] == ["0", "1", "2"]
    # batched together vs alone: equal up to fp32 rounding (padding is masked)
    assert records[0]["logit_real"] == pytest.approx(files[0]["logit_real"], abs=1e-5)
    assert records[1]["logit_real"] == pytest.approx(files[0]["logit_real"], abs=1e-5)
    assert records[2]["error"] == "contains no audio samples"


def test_bad_arrays_are_reported_alone(detector, clips):
    good = sf.read(clips[0], dtype="float32")[0]
    records = detector.score([good, np.full(8000, np.nan, "float32"), np.zeros((2, 2, 2)), good[:100],
                              np.array(["x"])])
    assert records[0]["error"] is None and records[0]["prob_real"] == detector.score(clips[0])[0]["prob_real"]
    assert records[1]["error"] == "contains NaN or infinite samples"
    assert records[2]["error"].startswith("not audio")
    assert records[3]["error"].startswith("too short")
    assert records[4]["error"].startswith("not audio")
    with pytest.raises(ValueError, match="too short"):
        detector.segments(good[:100])


def test_dataframe(detector, clips):
    frame = detector.score(clips[:2], as_dataframe=True)
    assert list(frame.columns) == ["id", "path", "logit_fake", "logit_real", "prob_real", "seconds", "error"]
    records = detector.score(clips[:2])
    assert frame["prob_real"].tolist() == [r["prob_real"] for r in records]
    assert frame["seconds"].tolist() == pytest.approx([0.6, 0.9], abs=1e-3)


def readme_example():
    """The Python code block of the README's "Python API" section."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs(tmp_path, monkeypatch, capsys, ckpt, clips):
    """The example as written: its Hub name resolves from a cache holding the tiny model,
    and its files are tiny clips in the working folder."""
    code = readme_example()
    assert len(code.strip().splitlines()) <= 5
    name = re.search(r'from_pretrained\("([^"]+)"', code).group(1)
    with open(ckpt, "rb") as fh:
        add_snapshot(tmp_path / "hub", name, "c" * 40, {"model.safetensors": fh.read()}, refs=["main"])
    use_offline_cache(monkeypatch, tmp_path / "hub")
    monkeypatch.chdir(tmp_path)
    noise(tmp_path / "clip.wav", 5.0, 16000, seed=5)
    noise(tmp_path / "other.flac", 1.0, 16000, seed=6)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "clip" in out and "other" in out and "prob_real" in out
    windows = namespace["windows"]
    assert [(w["start"], w["end"]) for w in windows] == [(0.0, 4.0), (2.0, 5.0)]  # the last keeps the rest
    assert all(0 < w["prob_real"] < 1 for w in windows)
