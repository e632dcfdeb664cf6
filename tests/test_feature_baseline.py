"""tools/feature_baseline.py: cross-validated and test EERs of the feature-statistics baseline."""
import os
import runpy

import numpy as np
import soundfile as sf

TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "feature_baseline.py")


def corpus(folder, fake_is_separable=True):
    """egs-style metadata: 3 languages in train, 1 in test; real = white noise, fake = a
    low-pass hum (or the same noise as the reals, when `fake_is_separable` is False)."""
    rng = np.random.default_rng(0)
    rows = ["file,label,speaker,split,source,attack,language,channel,text"]
    for language, split in (("A", "train"), ("B", "train"), ("C", "train"), ("D", "test")):
        for i in range(6):
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
