"""Frame targets in the data pipeline and SSLBrain training with `targets: frames`."""
import os
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from adf.data.manifest import COLUMNS
from adf.data.pipeline import load_dataset
from adf.localisation.regions import format_regions
from adf.models.backbones import CNN_TINY
from adf.train import main as train_main
from tests.synth import manifest_row

HPARAMS = os.path.join(os.path.dirname(__file__), "..", "recipes", "posttrain", "hparams", "tiny.yaml")


def partial_corpus(root, n_per_split=(24, 8), seed=0, long_clip=False):
    """Clips of a tone (real) with a burst of loud noise (fake) inserted; manifests with FakeRegions."""
    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "valid"), n_per_split):
        rows = []
        for i in range(n):
            sr = 16000
            sec = 14.0 if long_clip else float(rng.uniform(1.0, 1.6))
            t = np.arange(int(sec * sr)) / sr
            x = 0.3 * np.sin(2 * np.pi * 300 * t) + 0.01 * rng.standard_normal(t.size)
            regions = []
            if i % 4:  # three clips in four are partially fake
                length = rng.uniform(0.25, 0.5) if not long_clip else 2.0
                start = rng.uniform(0.1, sec - length - 0.1)
                a, b = int(start * sr), int((start + length) * sr)
                x[a:b] = 0.5 * rng.standard_normal(b - a)
                regions = [(a / sr, b / sr)]
            rel = f"audio/{split}_{i}.wav"
            os.makedirs(root / "audio", exist_ok=True)
            sf.write(root / rel, x.astype(np.float32), sr)
            row = manifest_row(f"PT-{split}{i}", "fake" if regions else "real", f"$ROOT/{rel}", sec, sr,
                               proportion=split)
            row["FakeRegions"] = format_regions(regions)
            rows.append(row)
        os.makedirs(root / "data", exist_ok=True)
        pd.DataFrame(rows, columns=COLUMNS + ["FakeRegions"]).to_csv(root / "data" / f"{split}.csv", index=False)


def test_frame_targets_follow_the_audio_through_the_crop(tmp_path):
    # 14 s clips: training crops them to 10-13 s at a random place; the fake targets must
    # still sit on the loud (noise) frames of what the model gets
    partial_corpus(tmp_path, (4, 0), long_clip=True)
    data = load_dataset(tmp_path / "data" / "train.csv", tmp_path, "train", seed=3, frame_layers=CNN_TINY)
    checked = 0
    for item in data:
        wav, target = item["wav"].numpy(), item["frame_target"].numpy()
        assert len(wav) <= 13 * 16000
        # energy of each frame's 25 ms window; the noise burst is far louder than the tone
        energy = np.array([np.mean(wav[320 * i: 320 * i + 400] ** 2) for i in range(len(target))])
        loud = energy > 2 * np.median(energy)
        inside = target == 0
        edge = np.abs(np.diff(np.r_[inside[0], inside].astype(int))) + np.abs(np.diff(np.r_[inside, inside[-1]].astype(int)))
        assert (loud == inside)[edge == 0].all(), item["id"]  # frames straddling a boundary may go either way
        checked += inside.any()
    assert checked >= 2


def test_frames_need_the_whole_utterance_policy(tmp_path):
    partial_corpus(tmp_path, (2, 0))
    with pytest.raises(ValueError, match="whole-utterance"):
        load_dataset(tmp_path / "data" / "train.csv", tmp_path, "train", input_policy="first-64600",
                     frame_layers=CNN_TINY)


def test_training_with_frame_targets_learns_to_localise(tmp_path):
    partial_corpus(tmp_path, (16, 6))
    out = tmp_path / "exp"
    train_main([HPARAMS, "--data_folder", str(tmp_path), "--manifest_folder", str(tmp_path / "data"),
                "--output_folder", str(out), "--noprogressbar", "--max_batch_seconds", "8",
                "--warmup_steps", "5", "--lr", "0.003", "--number_of_epochs", "2", "--targets", "frames"])
    log = (out / "train_log.txt").read_text()
    eers = [float(m) for m in re.findall(r"valid EER: ([0-9.e+-]+)", log)]
    assert len(eers) == 2 and min(eers) < 10.0, eers  # frame EER: noise frames vs tone frames
    # the exported model scores frames: fake frames of a validation clip lowest
    from adf.checkpoints import load_model
    from adf.localisation.detect import frame_scores

    model = load_model(out / "save" / "best_model.safetensors").eval()
    valid = pd.read_csv(tmp_path / "data" / "valid.csv", keep_default_na=False)
    row = valid[valid.FakeRegions != ""].iloc[0]
    scores = frame_scores(model, str(row.Path).replace("$ROOT", str(tmp_path)))
    from adf.localisation.regions import frame_targets, parse_regions

    target = frame_targets(parse_regions(row.FakeRegions), len(scores))
    assert scores[target == 0].mean() < scores[target == 1].mean()


def test_frames_refuse_a_head_without_frame_logits(tmp_path):
    partial_corpus(tmp_path, (4, 2))
    with pytest.raises(SystemExit, match="frames"):
        train_main([HPARAMS, "--data_folder", str(tmp_path), "--manifest_folder", str(tmp_path / "data"),
                    "--output_folder", str(tmp_path / "exp"), "--noprogressbar", "--targets", "frames",
                    "--loss", "ocsoftmax"])


def test_frame_logits_average_to_the_utterance_logits():
    from adf.models.classifier import build_classifier

    model = build_classifier("tiny").eval()
    wav = torch.randn(2, 8000)
    lengths = torch.tensor([8000, 6000])
    with torch.no_grad():
        frames, n = model(wav, lengths, return_frames=True)
        utt = model(wav, lengths)
    for i in range(2):
        assert torch.allclose(frames[i, : n[i]].mean(0), utt[i], atol=1e-5)
