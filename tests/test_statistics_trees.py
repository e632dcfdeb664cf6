"""The statistics detector: clip statistics (adf.models.clip_statistics), boosted trees as
tensors (adf.models.boosted_trees), fitting through train.py (adf.fitting) and scoring with
`adf detect`, checked against scikit-learn scoring the same statistics."""
import numpy as np
import pandas as pd
import pytest
import torch

from adf.models.boosted_trees import TreeEnsemble
from adf.models.clip_statistics import (MIN_SAMPLES, STATISTICS, VOICE_SOURCE_NAMES, clip_statistics,
                                        statistics_size, voice_source_frames, voice_source_statistics)
from tests.synth import ROOT, toy_corpus

HPARAMS = str(ROOT / "recipes" / "posttrain" / "hparams" / "stats_trees.yaml")


def voiced(seconds=1.0, f0=120.0, sr=16000):
    """A vowel-like signal: a glottal pulse train through three formant resonators."""
    from scipy.signal import lfilter

    x = np.zeros(int(seconds * sr))
    x[::int(sr / f0)] = 1.0
    for formant, bandwidth in ((500, 80), (1500, 120), (2500, 160)):
        r = np.exp(-np.pi * bandwidth / sr)
        x = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * formant / sr), r * r], x)
    return 0.5 * x / np.abs(x).max()


def griffin_lim(wav, seed):
    """`wav` rebuilt by torchaudio's Griffin-Lim from its magnitude STFT and a random phase."""
    import torch
    import torchaudio

    spec = torch.stft(torch.tensor(wav, dtype=torch.float32), 512, 128, window=torch.hann_window(512),
                      return_complex=True).abs()
    torch.manual_seed(seed)
    return torchaudio.transforms.GriffinLim(n_fft=512, hop_length=128, n_iter=8, rand_init=True)(spec).numpy()


def test_excitation_measures_tell_pulses_from_rebuilt_phase():
    """Griffin-Lim (torchaudio's, from a random phase) keeps the pulse train's magnitude
    spectrum but not the alignment of its harmonics: the LP residual stops being peaked and the
    band envelopes stop pulsing at the pitch period."""
    names = VOICE_SOURCE_NAMES
    wav = voiced()
    rebuilt = griffin_lim(wav, seed=0)
    pulses, smeared = voice_source_frames(wav), voice_source_frames(rebuilt)
    assert len(pulses) > 50 and len(smeared) > 10  # both read as voiced (periodic)
    pulses, smeared = np.median(pulses, 0), np.median(smeared, 0)
    kurtosis = names.index("residual_kurtosis")
    assert pulses[kurtosis] > 20 and smeared[kurtosis] < pulses[kurtosis] / 3  # Gaussian noise: 3
    for band in (i for i, n in enumerate(names) if n.startswith("pulsing_")):
        assert pulses[band] > 0.7 and smeared[band] < pulses[band] - 0.3  # (N - lag) / N ~ 0.79 at best
    features = voice_source_statistics(wav)
    assert features.shape == (3 * len(names),) and np.allclose(features[:len(names)], pulses)


def test_unvoiced_audio_has_no_voiced_frames():
    noise = np.random.default_rng(0).standard_normal(16000) * 0.1
    assert voice_source_frames(noise).shape == (0, len(VOICE_SOURCE_NAMES))
    assert not voice_source_statistics(noise).any()


def test_statistics_sizes_are_what_the_families_return():
    wav = torch.from_numpy(voiced(0.5)).float()
    for family in STATISTICS:
        assert len(clip_statistics(wav, (family,))) == statistics_size((family,))
    assert len(clip_statistics(wav)) == statistics_size(tuple(STATISTICS))
    with pytest.raises(ValueError, match="too short"):
        clip_statistics(torch.zeros(MIN_SAMPLES - 1))
    silence = clip_statistics(torch.zeros(MIN_SAMPLES))  # no spectrum, no voiced frame: still finite
    assert np.isfinite(silence).all()


def _fitted_gbc(x, y, depth, **options):
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(max_depth=depth, random_state=0, **options).fit(x, y)


@pytest.mark.parametrize("depth, options", [(3, {}), (2, dict(n_estimators=30, learning_rate=0.3)),
                                            (4, dict(n_estimators=20, min_samples_leaf=15))])
def test_tree_ensemble_reproduces_sklearn_decision_function(depth, options):
    """Including trees that stop early (min_samples_leaf) and points that sit on a threshold
    (integer-valued features: scikit-learn splits at midpoints, the data hit neighbours)."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal((200, 6)), rng.integers(0, 5, (200, 2))], 1).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 6] + 0.3 * rng.standard_normal(200) > 1).astype(int)
    gbc = _fitted_gbc(x, y, depth, **options)
    trees = TreeEnsemble(0, depth, 8).load_sklearn(gbc)
    if "min_samples_leaf" in options:  # some tree stopped above the last level
        assert any(est.tree_.n_leaves < 2 ** depth for est in gbc.estimators_[:, 0])
    probe = np.concatenate([x, rng.standard_normal((50, 8)).astype(np.float32)])
    got = trees(torch.from_numpy(probe)).numpy()
    assert np.abs(got - gbc.decision_function(probe)).max() < 1e-4
    assert trees.n_trees == gbc.n_estimators_
    assert TreeEnsemble.options_from_state_dict(trees.state_dict()) == (gbc.n_estimators_, depth)


def test_float32_thresholds_keep_every_comparison():
    """A float64 threshold between two adjacent float32 values: the stored float32 one must
    send both values the way scikit-learn does."""
    from adf.models.boosted_trees import _floor_float32

    a = np.float32(1.0)
    b = np.nextafter(a, np.float32(2))
    t = (float(a) + float(b)) / 2  # not a float32
    t32 = _floor_float32(t)
    assert (a <= t32) == (a <= t) and (b <= t32) == (b <= t) and float(t32) <= t


def test_unfitted_detector_says_so():
    from adf.models.registry import build_model

    model = build_model("stats_trees")
    assert model.input_policy == "whole" and model.config == dict(n_trees=0, depth=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        model(torch.randn(1, 16000))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """stats_trees fitted by train.py on a toy corpus: (corpus root, experiment folder)."""
    from adf.train import main

    root = tmp_path_factory.mktemp("toy")
    toy_corpus(root, n_per_split=(24, 8, 8))
    out = root / "exp"
    assert main([HPARAMS, "--data_folder", str(root), "--manifest_folder", str(root / "data"),
                 "--output_folder", str(out), "--n_trees", "20"]) == 0
    return root, out


def _statistics_of_files(csv, root):
    """Statistics computed outside the pipeline: soundfile, adf.audio.load_16k, layer norm."""
    from adf.audio import load_16k, waveform_layer_norm

    table = pd.read_csv(csv)
    paths = [p.replace("$ROOT", str(root)) for p in table["Path"]]
    x = np.stack([clip_statistics(waveform_layer_norm(load_16k(p))) for p in paths])
    return x, (table["Label"] == "real").to_numpy().astype(int), table


def test_train_py_fits_and_adf_detect_scores_as_sklearn_does(fitted, tmp_path):
    from adf.checkpoints import read_checkpoint
    from adf.cli import main

    root, out = fitted
    best = out / "save" / "best_model.safetensors"
    ckpt = read_checkpoint(best)
    assert ckpt.model_name == "stats_trees" and ckpt.input_policy == "whole"
    assert float(ckpt.extra["valid_EER"]) == 0.0 and ckpt.extra["train_clips"] == "24"
    assert "valid EER" in (out / "train_log.txt").read_text()
    # scikit-learn, fitted on statistics read independently, scores the test clips the same
    x, y, _ = _statistics_of_files(root / "data" / "train.csv", root)
    gbc = _fitted_gbc(x, y, 3, n_estimators=20)
    tx, _, table = _statistics_of_files(root / "data" / "test.csv", root)
    scores = tmp_path / "scores.csv"
    assert main(["detect", "--ckpt", str(best), "-o", str(scores), "--workers", "0",
                 *[p.replace("$ROOT", str(root)) for p in table["Path"]]]) == 0
    got = pd.read_csv(scores)
    assert len(got) == len(table)
    assert np.abs((got["logit_real"] - got["logit_fake"]).to_numpy() - gbc.decision_function(tx)).max() < 1e-4


def test_fitting_refuses_fine_tuning_and_damaged_checkpoints_are_named(fitted, tmp_path):
    from adf.checkpoints import CheckpointError, load_model
    from adf.train import main

    root, out = fitted
    best = out / "save" / "best_model.safetensors"
    args = [HPARAMS, "--data_folder", str(root), "--manifest_folder", str(root / "data"),
            "--output_folder", str(tmp_path / "ft")]
    assert main(args + ["--experiment", "finetune"]) == 2
    assert main(args + ["--init_from", str(best)]) == 2
    model = load_model(best)
    assert model.trees.n_trees == 20 and model.trees.depth == 3
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(best.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_model(cut)


def test_unusable_clips_are_skipped_and_reported(fitted, tmp_path, caplog):
    """An unreadable file and a clip too short for the statistics are skipped; the fit goes on."""
    from adf.fitting import clip_statistics_of
    from adf.models.registry import build_model
    from tests.synth import write_manifest, write_tone

    root, _ = fitted
    train = pd.read_csv(root / "data" / "train.csv")
    (tmp_path / "bad.wav").write_bytes(b"RIFF not audio")
    write_tone(tmp_path / "short.wav", seconds=0.02)
    rows = train.to_dict("records") + [
        dict(train.iloc[0], ID="BAD", Path=str(tmp_path / "bad.wav")),
        dict(train.iloc[0], ID="SHORT", Path=str(tmp_path / "short.wav"), Duration=0.02)]
    csv = write_manifest(tmp_path / "train.csv", rows)
    x, y, ids = clip_statistics_of(build_model("stats_trees"), csv, str(root))
    assert len(ids) == len(train) and "BAD" not in ids and "SHORT" not in ids
    assert x.shape == (len(train), statistics_size(tuple(STATISTICS)))
    text = caplog.text
    assert "bad.wav" in text and "SHORT" in text and "too short" in text


def test_onnx_export_and_engine_are_refused_with_the_reason(fitted, tmp_path, capsys):
    from adf.cli import main

    root, out = fitted
    best = str(out / "save" / "best_model.safetensors")
    clip = str(next((root / "audio").glob("test_*.wav")))
    assert main(["export", "--ckpt", best, "--onnx", str(tmp_path / "m.onnx")]) != 0
    assert not (tmp_path / "m.onnx").exists()
    assert "stats_trees does not export to ONNX: its clip statistics are computed by numpy" in capsys.readouterr().err
    assert main(["detect", "--ckpt", best, "--engine", "onnxruntime", "-o", str(tmp_path / "s.csv"), clip]) != 0
    assert "does not export to ONNX: its clip statistics" in capsys.readouterr().err
