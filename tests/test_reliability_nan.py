"""Issue 16, class 4: no NaN or Inf ever becomes a score."""
import math

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from adf.audio import SAFE_PEAK, bounded, load_for_model, resample, to_mono, waveform_layer_norm
from adf.checkpoints import CheckpointError, load_model, save_checkpoint
from adf.cli import main
from adf.inference import Item, score_items
from adf.models.classifier import build_classifier


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_classifier("tiny").eval()


def clip(path, data, sr=16000):
    sf.write(path, np.asarray(data, dtype="float32"), sr, subtype="FLOAT")
    return str(path)


@pytest.mark.parametrize("channels, sr", [(1, 16000), (2, 16000), (1, 44100)])
def test_normalisation_is_finite_for_huge_finite_audio(channels, sr):
    generator = torch.Generator().manual_seed(channels + sr)
    wav = torch.randn(channels, sr, generator=generator).clamp(-6, 6) * 5e37  # finite float32 values
    # before: NaN (the variance, the channel mix and the resampling filter overflowed)
    out = waveform_layer_norm(resample(to_mono(bounded(wav)), sr))
    assert torch.isfinite(out).all()
    # and equal to the exact normalisation, in float64 where nothing overflows (the layer
    # norm is scale-invariant but for its eps 1e-5 against a variance of ~1/36 after scaling)
    exact = waveform_layer_norm(resample(to_mono(wav.double()), sr)).float()
    assert torch.allclose(out, exact, rtol=2e-3, atol=1e-4)


def test_ordinary_audio_is_preprocessed_exactly_as_before():
    wav = torch.randn(2, 8000) * 0.3
    assert bounded(wav) is wav
    loud = torch.full((1, 10), SAFE_PEAK * 2)
    assert bounded(loud).abs().max().item() == pytest.approx(1.0)


def test_huge_float_file_is_scored_finite(model, tmp_path):
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(8000)
    huge = clip(tmp_path / "huge.wav", noise.clip(-6, 6) * 5e37)
    sane = clip(tmp_path / "sane.wav", noise.clip(-6, 6) * 0.1)
    assert torch.isfinite(load_for_model(huge)).all()
    a, b = score_items(model, [Item("huge", huge), Item("sane", sane)])
    assert a.ok and math.isfinite(a.logit_fake) and math.isfinite(a.logit_real)
    assert (a.logit_fake, a.logit_real) == pytest.approx((b.logit_fake, b.logit_real), abs=1e-3)


def test_nan_logits_are_an_error_for_that_input_not_a_row(model, tmp_path, monkeypatch):
    files = [clip(tmp_path / f"{k}.wav", np.random.default_rng(k).standard_normal(4000 + 1000 * k) * 0.1)
             for k in range(3)]
    plain = type(model).forward

    def poisoned(self, wav, lengths=None, **kw):  # NaN for the 5000-sample input only
        logits, emb = plain(self, wav, lengths, **kw)
        return logits.masked_fill((lengths == 5000)[:, None], float("nan")), emb

    monkeypatch.setattr(type(model), "forward", poisoned)
    scores = {s.item.id: s for s in score_items(model, [Item(str(k), f) for k, f in enumerate(files)],
                                                batch_size=3)}
    assert not scores["1"].ok and "NaN" in scores["1"].error
    assert scores["0"].ok and scores["2"].ok
    # one window of a windowed input is enough to fail it
    (windowed,) = score_items(model, [Item("w", files[2])], window=5000 / 16000, hop=1000 / 16000)
    assert not windowed.ok and "NaN" in windowed.error


def test_checkpoint_with_nan_weight_is_refused(tmp_path, capsys):
    torch.manual_seed(0)
    broken = build_classifier("tiny")
    with torch.no_grad():
        broken.proj_fc.weight[0, 0] = float("nan")
    path = tmp_path / "nan.ckpt"
    save_checkpoint(broken, path)
    with pytest.raises(CheckpointError, match="proj_fc.weight"):
        load_model(path)
    audio = clip(tmp_path / "a.wav", np.random.default_rng(0).standard_normal(8000) * 0.1)
    # before: a row of NaN logits and exit status 0
    assert main(["detect", "--ckpt", str(path), "-o", str(tmp_path / "s.csv"), "--workers", "0", audio]) == 2
    assert "NaN or infinite" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_model_overflowing_on_every_input_is_a_model_error(tmp_path, capsys):
    torch.manual_seed(0)
    overflowing = build_classifier("tiny")
    with torch.no_grad():  # finite weights whose logits overflow to +-inf
        overflowing.proj_fc.weight.fill_(3e38)
    path = tmp_path / "inf.ckpt"
    save_checkpoint(overflowing, path)
    audio = [clip(tmp_path / f"{k}.wav", np.random.default_rng(k).standard_normal(8000) * 0.1) for k in range(2)]
    out = tmp_path / "s.csv"
    assert main(["detect", "--ckpt", str(path), "-o", str(out), "--workers", "0", *audio]) == 2
    err = capsys.readouterr().err
    assert "NaN or infinite logits for every input" in err
    assert len(pd.read_csv(out)) == 0  # no row holds a non-finite score
