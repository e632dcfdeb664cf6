"""tools/feature_baseline.py: cross-validated and test EERs of the feature-statistics baseline."""
import os
import runpy

import numpy as np
import soundfile as sf

TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "feature_baseline.py")


def corpus(folder, fake_is_separable=True, per_class=6):
    """egs-style metadata: 3 languages in train, 1 in test; real = white noise, fake = a
    low-pass hum (or the same noise as the reals, when `fake_is_separable` is False)."""
    rng = np.random.default_rng(0)
    rows = ["file,label,speaker,split,source,attack,language,channel,text"]
    for language, split in (("A", "train"), ("B", "train"), ("C", "train"), ("D", "test")):
        for i in range(per_class):
            for label in ("real", "fake"):
                noise = rng.standard_normal(16000)
                if label == "fake" and fake_is_separable:
                    noise = np.convolve(noise, np.ones(40) / 40, mode="same")
                name = f"{language}_{label}_{i}.wav"
                sf.write(folder / name, 0.1 * noise / np.abs(noise).max(), 16000)
                attack = "-" if label == "real" else "hum"
                rows.append(f"{name},{label},s{language},{split},x,{attack},{language},pcm,t{i}")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return str(folder / "metadata.csv")


def run(metadata, capsys):
    main = runpy.run_path(TOOL)["main"]
    assert main([metadata, "--train-splits", "train", "--C", "0.1"]) == 0
    return capsys.readouterr().out.splitlines()[-1].split()


def test_separable_classes_give_zero_eer(tmp_path, capsys):
    row = run(corpus(tmp_path), capsys)
    c, cv_pooled, *_, test, hum = row
    assert float(c) == 0.1 and float(cv_pooled) == 0.0 and float(test) == 0.0 and float(hum) == 0.0


def test_indistinguishable_classes_stay_near_chance(tmp_path, capsys):
    row = run(corpus(tmp_path, fake_is_separable=False), capsys)
    assert float(row[1]) >= 25.0 and float(row[-2]) >= 25.0  # no leak from labels into features


def test_boosted_trees_on_both_feature_sets_separate_the_classes(tmp_path, capsys):
    main = runpy.run_path(TOOL)["main"]
    # (20 per class and language: the trees' leaves hold 20 clips at least)
    assert main([corpus(tmp_path, per_class=20), "--train-splits", "train", "--features", "cepstra", "excitation",
                 "--classifier", "boosting", "--auc"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("ROC AUC, real vs attack") for line in out)
    assert any(line.startswith("  hum: periodicity ") for line in out)
    row = out[-1].split()
    assert row[0] == "trees" and float(row[1]) == 0.0 and float(row[-2]) == 0.0  # CV pooled, test


def test_auc_table_ranks_pulses_above_their_griffin_lim_rebuilds(tmp_path, capsys):
    import pandas as pd

    from adf.models.clip_statistics import voice_source_statistics
    from tests.test_statistics_trees import griffin_lim, voiced

    tool = runpy.run_path(TOOL)
    rows = []
    for i, f0 in enumerate((100.0, 115.0, 130.0, 145.0)):
        wav = voiced(f0=f0)
        for label, audio, attack in (("real", wav, "-"), ("fake", griffin_lim(wav, seed=i), "griffinlim")):
            path = tmp_path / f"{label}{i}.wav"
            sf.write(path, audio, 16000)
            rows.append(dict(Path=str(path), Label=label, Attack=attack, Speaker="s1"))
    table = pd.DataFrame(rows)
    excitation = np.stack([voice_source_statistics(sf.read(p)[0]) for p in table["Path"]])
    tool["print_aucs"](table, (table["Label"] == "real").to_numpy().astype(int), excitation)
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("  griffinlim:") and "residual_kurtosis 1.00 [1.00-1.00]" in line


def test_scores_file_reads_back_with_the_printed_test_eer(tmp_path, capsys):
    """--scores writes the test split as an adf score file: the scorer's EER of that file is
    the EER the tool printed, and ids are the files' stems."""
    from adf.metrics import compute_eer
    from adf.scorefile import read_scores

    main = runpy.run_path(TOOL)["main"]
    out = tmp_path / "scores.csv"
    assert main([corpus(tmp_path, fake_is_separable=False), "--train-splits", "train", "--C", "0.1",
                 "--scores", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"wrote 12 test scores -> {out}"
    printed_test = float(lines[-2].split()[-2])
    scores, _, _ = read_scores(str(out))
    assert sorted(scores["id"]) == sorted(f"D_{label}_{i}" for label in ("real", "fake") for i in range(6))
    eer = 100 * compute_eer(scores["score"].to_numpy(), scores["label"].to_numpy())[0]
    assert abs(eer - printed_test) < 0.05 and 0 < printed_test < 100


def test_scores_need_one_regularisation(tmp_path, capsys):
    import pytest

    main = runpy.run_path(TOOL)["main"]
    with pytest.raises(SystemExit):
        main([corpus(tmp_path), "--C", "0.1", "1", "--scores", str(tmp_path / "s.csv")])
    assert "give one --C" in capsys.readouterr().err
