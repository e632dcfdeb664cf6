"""recipes/finetune and recipes/evaluate on a generated example corpus, and the EER table."""
import csv
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from adf.data.manifest import COLUMNS
from tests.synth import ROOT, manifest_row, write_tone

REPO = str(ROOT)


def egs_tree(root, n=(12, 6, 6)):
    """An egs_data/-style corpus: metadata.csv (file,label,speaker,split,...) plus tones/noise."""
    rows = []
    for split, count in zip(("train", "valid", "test"), n):
        for i in range(count):
            label = "real" if i % 2 else "fake"
            rel = f"{split}/{label}_{i}.wav"
            write_tone(root / rel, 0.8 + 0.05 * i, freq=300.0 if label == "real" else 0.0,
                       noise=0.02 if label == "real" else 0.3, seed=i + 100 * len(split))
            rows.append(dict(file=rel, label=label, speaker="s", split=split, source="t", attack="-", language="en"))
    with open(root / "metadata.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def run_recipe(recipe, *args):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    proc = subprocess.run([os.path.join(REPO, "recipes", recipe, "run.sh"), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_finetune_recipe_with_duration_then_evaluate_table(tmp_path):
    egs = tmp_path / "egs"
    egs_tree(egs)
    data, exp = tmp_path / "data", tmp_path / "exp"
    train_args = "--number_of_epochs 1 --optimizer_step_limit 2 --max_batch_seconds 4 --noprogressbar"
    log = run_recipe("finetune", "--data_root", egs, "--duration", 1, "--data_dir", data,
                     "--exp_dir", exp, "--train_args", train_args, "--init_from", "",
                     "--posttrain_exp", tmp_path / "no_posttrain")
    assert "RANDOM initialisation" in log  # no post-trained model under that exp folder
    ft = exp / "tiny_egs_1s"
    hp = yaml.safe_load((ft / "hyperparams.yaml").read_text().replace("!", "#"))
    assert hp["crop_max_seconds"] == hp["crop_min_seconds"] == 1  # --duration 1: 1 s crops
    assert hp["rawboost_algo"] == 5 and hp["lr"] == hp["finetune"]["lr"] and hp["experiment"] == "finetune"
    test = pd.read_csv(data / "egs_1s" / "test.csv")
    assert len(test) == 6 and set(test.Proportion) == {"test"}
    scores = pd.read_csv(ft / "scores" / "tiny_egs_1s.csv")
    assert sorted(scores["id"]) == sorted(test["ID"])
    table = pd.read_csv(ft / "results.csv")
    assert list(table.columns) == ["model", "EGS", "Pooled"] and list(table.model) == ["tiny_egs_1s"]
    assert "| tiny_egs_1s |" in (ft / "results.md").read_text()

    # Rerun: every stage sees its inputs unchanged and skips.
    again = run_recipe("finetune", "--data_root", egs, "--duration", 1, "--data_dir", data,
                       "--exp_dir", exp, "--train_args", train_args, "--init_from", "", "--stage", 1,
                       "--posttrain_exp", tmp_path / "no_posttrain")
    assert f"{ft} is up to date" in again and "up to date" in again.split("stage 3")[1]

    # evaluate: two models (the fine-tuned one twice under two names) on the egs test split.
    best = ft / "save" / "best_model.safetensors"
    ev = tmp_path / "ev"
    run_recipe("evaluate", "--data_root", egs, "--data_dir", ev / "data", "--exp_dir", ev / "exp",
               "--ckpts", f"a={best} b={best}")
    table = pd.read_csv(ev / "exp" / "results.csv")
    assert list(table.model) == ["a", "b"] and table.EGS[0] == table.EGS[1]
    assert table.EGS[0] == pytest.approx(pd.read_csv(ft / "results.csv").EGS[0])


def _scores_with_flips(labels, flips):
    """Real trials near +1, fake near -1, except `flips` of each class put beyond the other
    class entirely: the EER is then exactly flips / trials-per-class, by any definition."""
    jitter = 0.001 * np.arange(len(labels))
    s = np.where(labels == 1, 1 + jitter, -1 - jitter)
    for cls, extreme in ((1, -2.0), (0, 2.0)):
        idx = np.flatnonzero(labels == cls)[:flips]
        s[idx] = extreme + np.sign(extreme) * jitter[idx]
    return s


def test_results_table_has_models_as_rows_and_test_sets_as_columns(tmp_path):
    from tools.results_table import main

    ids = [f"{s}-{i}" for s in ("AAA", "BBB") for i in range(40)]
    labels = np.array([i % 2 for i in range(80)])
    key = pd.DataFrame([manifest_row(i, "real" if y else "fake", f"/x/{i}.wav", 1.0) for i, y in zip(ids, labels)],
                       columns=COLUMNS)
    key.to_csv(tmp_path / "key.csv", index=False)
    # (flips in AAA, flips in BBB) per class of 20 trials -> EER % by hand
    models = {"good": ((0, 2), {"AAA": 0.0, "BBB": 10.0, "Pooled": 5.0}),
              "bad": ((2, 4), {"AAA": 10.0, "BBB": 20.0, "Pooled": 15.0})}
    for model, ((fa, fb), _) in models.items():
        s = np.r_[_scores_with_flips(labels[:40], fa), _scores_with_flips(labels[40:], fb)]
        pd.DataFrame({"id": ids, "path": "-", "logit_fake": -s / 2, "logit_real": s / 2,
                      "prob_real": 1 / (1 + np.exp(-s))}).to_csv(tmp_path / f"{model}.csv", index=False)
    assert main([f"{m}={tmp_path / m}.csv" for m in models] +
                ["--key", str(tmp_path / "key.csv"), "--csv", str(tmp_path / "t.csv"),
                 "--markdown", str(tmp_path / "t.md")]) == 0
    table = pd.read_csv(tmp_path / "t.csv").set_index("model")
    assert list(table.index) == ["good", "bad"] and list(table.columns) == ["AAA", "BBB", "Pooled"]
    for model, (_, expected) in models.items():
        for col, eer in expected.items():
            assert table.loc[model, col] == pytest.approx(eer, abs=1e-6), (model, col)
    md = (tmp_path / "t.md").read_text().splitlines()
    assert md[0] == "| Model | AAA | BBB | Pooled |" and md[2] == "| good | 0.00 | 10.00 | 5.00 |"
