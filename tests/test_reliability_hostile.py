"""Issue 16, class 5: hostile or broken files are reported, never exhaust the
machine, never get scored on a part, never reach outside the corpus."""
import json
import os
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from adf.audio import AudioError, AudioLimits, read_audio
from adf.audio_file import audio_header
from adf.checkpoints import CheckpointError, load_model, read_checkpoint, save_checkpoint
from adf.cli import main
from adf.inference import Item, score_items
from adf.models.classifier import build_classifier
from tests.synth import write_manifest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "corpora"))
from corpus_tree import prepare, write_audio, write_text  # noqa: E402


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "DATA"
    root.mkdir()
    return root


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_classifier("tiny").eval()


def noise(path, n, sr=16000, seed=0):
    sf.write(path, (0.1 * np.random.default_rng(seed).standard_normal(n)).astype("float32"), sr)
    return str(path)


def test_absurd_sample_rate_is_refused_before_resampling(model, tmp_path, monkeypatch):
    one_hz = noise(tmp_path / "one_hz.wav", 19000, sr=1)  # 38 KB declaring 1 Hz: 19000 s
    good = noise(tmp_path / "good.wav", 8000)
    import adf.audio

    real_resample = adf.audio.resample

    def no_resampling(wav, sr, *a, **k):
        if sr == 1:
            raise AssertionError("resampled a file that breaks the limits")
        return real_resample(wav, sr, *a, **k)

    monkeypatch.setattr(adf.audio, "resample", no_resampling)  # before: x16000, > 8 GB
    with pytest.raises(AssertionError):
        adf.audio.load_for_model(one_hz)
    scores = {s.item.id: s for s in score_items(model, [Item("bad", one_hz), Item("good", good)])}
    assert "sample rate 1 Hz is outside the accepted 4000-768000 Hz" in scores["bad"].error
    assert scores["good"].ok


def test_length_limit_is_per_model_input_and_configurable(model, tmp_path):
    path = noise(tmp_path / "long.wav", 16000)
    limits = AudioLimits(max_seconds=0.5)
    (whole,) = score_items(model, [Item("x", path)], limits=limits)
    assert "over the limit of 0.5 s" in whole.error and "--window" in whole.error
    (windowed,) = score_items(model, [Item("x", path)], limits=limits, window=0.5)
    assert windowed.ok and len(windowed.windows) == 2
    (rate,) = score_items(model, [Item("x", path)], limits=AudioLimits(min_rate=22050))
    assert "16000 Hz is outside" in rate.error


def test_detect_limits_from_the_command_line(tmp_path, capsys):
    torch.manual_seed(0)
    save_checkpoint(build_classifier("tiny"), tmp_path / "m.ckpt")
    path = noise(tmp_path / "a.wav", 16000)
    args = ["detect", "--ckpt", str(tmp_path / "m.ckpt"), "--workers", "0", path]
    assert main([*args, "-o", str(tmp_path / "s.csv"), "--max-seconds", "0.5"]) == 2
    assert "over the limit of 0.5 s" in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path / "t.csv"), "--max-rate", "8000"]) == 2
    assert main([*args, "-o", str(tmp_path / "u.csv"), "--max-seconds", "0.5", "--window", "0.5"]) == 0


def test_memory_error_fails_only_that_input(model, tmp_path, monkeypatch):
    import adf.inference

    files = [noise(tmp_path / f"{k}.wav", 4000 + 1000 * k, seed=k) for k in range(3)]
    real_load = adf.inference.load_16k

    def load(path, start=0, stop=None):
        if path == files[1]:
            raise MemoryError
        return real_load(path, start, stop)

    monkeypatch.setattr(adf.inference, "load_16k", load)
    scores = {s.item.id: s for s in score_items(model, [Item(str(k), f) for k, f in enumerate(files)])}
    assert "out of memory decoding" in scores["1"].error
    assert scores["0"].ok and scores["2"].ok


def test_out_of_memory_batch_is_retried_one_input_at_a_time(model, tmp_path, monkeypatch):
    files = [noise(tmp_path / f"{k}.wav", 4000 + 100 * k, seed=k) for k in range(3)]
    alone = {s.item.id: s for s in score_items(model, [Item(str(k), f) for k, f in enumerate(files)],
                                                batch_size=1)}
    plain = type(model).forward

    def tight(self, wav, lengths=None, **kw):  # a batch of two, or the longest input, does not fit
        if wav.shape[0] > 1 or int(lengths.max()) >= 4200:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
        return plain(self, wav, lengths, **kw)

    monkeypatch.setattr(type(model), "forward", tight)
    scores = {s.item.id: s for s in score_items(model, [Item(str(k), f) for k, f in enumerate(files)],
                                                batch_size=3)}
    assert "out of memory scoring" in scores["2"].error
    for k in ("0", "1"):
        assert (scores[k].logit_fake, scores[k].logit_real) == pytest.approx(
            (alone[k].logit_fake, alone[k].logit_real), abs=1e-5)


def test_truncated_files_are_reported(tmp_path):
    whole = noise(tmp_path / "whole.wav", 16000)
    data = open(whole, "rb").read()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    # before: scored on the half that decodes
    with pytest.raises(AudioError, match="truncated: its header declares 32000 bytes"):
        audio_header(str(cut))
    audio_header(whole)
    with pytest.raises(AudioError, match="truncated"):
        read_audio(str(cut), 0, 16000)


def test_fifo_and_unreadable_files_are_named_as_such(tmp_path, monkeypatch):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioError, match="FIFO"):  # before: "file is empty (0 bytes)"
        audio_header(str(fifo))
    locked = noise(tmp_path / "locked.wav", 8000)
    os.chmod(locked, 0)
    try:
        if os.access(locked, os.R_OK):  # root reads anything: pretend it may not
            real_access = os.access
            monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == locked else real_access(p, mode))
        with pytest.raises(AudioError, match="permission denied"):  # before: "System error"
            audio_header(locked)
    finally:
        os.chmod(locked, 0o644)


def crafted(tmp_path, **change):
    """A tiny checkpoint whose stored backbone_config is changed."""
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(build_classifier("tiny"), path)
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    config = json.loads(meta["backbone_config"])
    config.update(change)
    meta["backbone_config"] = json.dumps(config)
    bad = tmp_path / "crafted.safetensors"
    save_file(load_file(str(path)), str(bad), metadata=meta)
    return bad


@pytest.mark.parametrize("change, message", [
    ({"encoder_num_layers": 10 ** 7}, "encoder_num_layers must be an integer in"),
    ({"encoder_embed_dim": "128"}, "encoder_embed_dim must be an integer"),
    ({"encoder_num_heads": 3}, "does not divide encoder_embed_dim"),
    ({"encoder_dropout": 5}, "encoder_dropout must be a number in [0, 1]"),
    ({"extractor_conv_layer_config": [[32, 10, 5]] * 100}, "1 to 16"),
    ({"extractor_mode": "rm -rf"}, "extractor_mode"),
    ({"surprise": 1}, "unknown field"),
])
def test_stored_model_config_is_validated_before_building(tmp_path, monkeypatch, change, message):
    import adf.models.classifier

    def no_build(*a, **k):
        raise AssertionError("built a model from an unchecked config")

    monkeypatch.setattr(adf.models.classifier, "build_on_meta", no_build)
    with pytest.raises(CheckpointError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_model(crafted(tmp_path, **change))


def test_sane_stored_config_still_loads(tmp_path):
    ckpt = read_checkpoint(crafted(tmp_path))
    assert ckpt.backbone_config["encoder_num_layers"] == 4
    load_model(ckpt.path)


def test_prepare_refuses_metadata_paths_escaping_the_root(data_root, tmp_path):
    top = data_root / "In-the-Wild" / "release_in_the_wild"
    write_audio(top / "0.wav")
    secret = write_audio(tmp_path / "outside.wav")  # exists, but outside the data root
    write_text(top / "meta.csv", "file,speaker,label\n0.wav,A,spoof\n../../../outside.wav,B,spoof\n"
                                 f"{secret},C,bona-fide\n")
    df, skips = prepare("In-the-Wild", data_root)
    assert list(df["ID"]) == ["ItW-0"]
    escaped = [where for where, reason in skips.items() if "outside the data root" in reason]
    assert len(escaped) == 2


def test_prepare_neutralises_formula_cells(data_root):
    top = data_root / "In-the-Wild" / "release_in_the_wild"
    write_audio(top / "0.wav")
    write_audio(top / "1.wav")
    write_text(top / "meta.csv", 'file,speaker,label\n0.wav,"=HYPERLINK(""http://x"")",spoof\n1.wav,-,spoof\n')
    df, _ = prepare("In-the-Wild", data_root)
    assert df.loc["ItW-0", "Speaker"] == "'=HYPERLINK(\"http://x\")"
    assert df.loc["ItW-1", "Speaker"] == "-"


def test_merge_reports_one_file_under_two_ids_and_train_test_sharing(tmp_path):
    from adf.data.merge import merge

    def man(name, rows):
        return name, write_manifest(tmp_path / f"{name}.csv",
                                    [dict(ID=i, Path=path, Proportion=proportion) for i, path, proportion in rows])

    train = [man("A", [("A-1", "/d/1.wav", "train"), ("A-2", "/d/1.wav", "train"), ("A-3", "/d/3.wav", "valid")])]
    test = [man("T", [("T-1", "/d/3.wav", "-"), ("T-2", "/d/4.wav", "-")])]
    problems = merge(train, test).problems
    assert any("/d/1.wav: one audio file under 2 IDs (A-1 in train.csv, A-2 in train.csv)" in p for p in problems)
    assert any("/d/3.wav: one audio file under 2 IDs" in p for p in problems)
    assert any("share 1 audio file(s) (e.g. /d/3.wav): possible train/test leakage" in p for p in problems)
