"""Issue 16, class 2: an id depends on its file alone; one file is one input;
two inputs with one id are an error naming both paths."""
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from adf.checkpoints import save_checkpoint
from adf.cli import main
from adf.detect import DuplicateIds, collect_items, file_id
from adf.models.classifier import build_classifier


def clip(path, seed=0):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    sf.write(path, (0.1 * np.random.default_rng(seed).standard_normal(8000)).astype("float32"), 16000)
    return str(path)


def ids_of(inputs, **kw):
    items, problems = collect_items(inputs, **kw)
    assert problems == []
    return {i.path: i.id for i in items}


def test_id_does_not_depend_on_other_inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clip("a/x.wav")
    clip("b/y.flac")
    alone = ids_of(["a"])
    assert alone == {"a/x.wav": "x"}
    # before: adding a folder with another x.* renamed a/x.wav to its path
    clip("c/sub/x2.wav")
    assert ids_of(["a", "c"])["a/x.wav"] == "x"
    for rule in ("stem", "path"):
        one = ids_of(["a"], ids=rule)
        both = ids_of(["a", "b"], ids=rule)
        assert both["a/x.wav"] == one["a/x.wav"]


def test_file_id_rules():
    assert file_id("./data//a/x.flac") == "x"
    assert file_id("./data//a/x.flac", "path") == "data/a/x.flac"
    assert file_id("data/sub/../a/x.flac", "path") == "data/a/x.flac"


def test_same_stem_in_two_places_is_an_error_naming_both(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clip("a/x.wav")
    clip("b/x.flac", seed=1)
    with pytest.raises(DuplicateIds) as err:
        collect_items(["a", "b"])
    assert "a/x.wav" in str(err.value) and "b/x.flac" in str(err.value) and "--ids path" in str(err.value)
    assert ids_of(["a", "b"], ids="path") == {"a/x.wav": "a/x.wav", "b/x.flac": "b/x.flac"}


def test_same_file_spelled_two_ways_is_one_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clip("a.wav")
    os.mkdir("x")
    os.symlink(tmp_path / "a.wav", "link.wav")
    for rule in ("stem", "path"):
        items, _ = collect_items(["./a.wav", "x/../a.wav", "a.wav", str(tmp_path / "a.wav")], ids=rule)
        assert [i.path for i in items] == ["./a.wav"]
    items, _ = collect_items(["a.wav", "link.wav"], ids="path")
    assert [i.path for i in items] == ["a.wav"]


def test_manifest_id_clash_with_a_file_names_both_paths(tmp_path, monkeypatch):
    from adf.data.manifest import COLUMNS

    monkeypatch.chdir(tmp_path)
    clip("x.wav")
    other = clip("data/other.wav", seed=2)
    rec = dict.fromkeys(COLUMNS, "-")
    rec.update(ID="x", Label="real", Duration=0.5, SampleRate=16000, Path=other, AudioChannel=1)
    pd.DataFrame([rec]).to_csv("m.csv", index=False)
    with pytest.raises(DuplicateIds, match=f"id 'x' of x.wav is already the id of {other}"):
        collect_items(["m.csv", "x.wav"])


def test_detect_refuses_duplicate_ids_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    clip("a/x.wav")
    clip("b/x.wav", seed=1)
    torch.manual_seed(0)
    save_checkpoint(build_classifier("tiny"), "m.ckpt")
    assert main(["detect", "--ckpt", "m.ckpt", "-o", "s.csv", "--workers", "0", "a", "b"]) == 2
    err = capsys.readouterr().err
    assert "a/x.wav" in err and "b/x.wav" in err and "duplicate id" in err
    assert not os.path.exists("s.csv") and not os.path.exists("s.csv.partial")
    # the same file twice is scored once
    assert main(["detect", "--ckpt", "m.ckpt", "-o", "t.csv", "--workers", "0", "a/x.wav",
                 "./a/../a/x.wav"]) == 0
    out = pd.read_csv("t.csv")
    assert out["id"].tolist() == ["x"] and out["path"].tolist() == ["a/x.wav"]


@pytest.mark.parametrize("name, expected", [
    ("=HYPERLINK(1)", "'=HYPERLINK(1)"), ("+cmd", "'+cmd"), ("-foo", "'-foo"), ("@SUM(A1)", "'@SUM(A1)"),
    ("plain", "plain"), ("-1", "-1"),
])
def test_formula_like_ids_are_neutralised(tmp_path, name, expected):
    path = clip(tmp_path / f"{name}.wav")
    assert file_id(path) == expected
