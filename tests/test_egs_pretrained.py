"""Starting a raw-waveform detector (AASIST-L) from a checkpoint in the recipes: the released
AASIST-L.pth (hparams/aasist_l_pretrained.yaml) and run.sh stage 3 (fine-tuning)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from adf.checkpoints import load_backbone_into, load_model, read_checkpoint
from adf.models.registry import build_model

ROOT = Path(__file__).resolve().parents[1]
# ADF_TEST_SHARED: where ../shared is when the checkout is elsewhere (e.g. a git worktree)
SHARED = Path(os.environ.get("ADF_TEST_SHARED", ROOT.parent / "shared")) / "pretrained" / "aasist"
WEIGHTS = SHARED / "AASIST-L.pth"  # clovaai/aasist models/weights/AASIST-L.pth
released = pytest.mark.skipif(not WEIGHTS.is_file(), reason=f"{WEIGHTS} (released AASIST-L) absent")


@released
def test_init_from_loads_a_whole_raw_waveform_detector_strictly():
    """`init_from:` on AASIST-L copies every weight (there is no separate backbone):
    the model then gives the logits of the file loaded as a detector."""
    model = build_model("aasist_l").eval()
    load_backbone_into(model, WEIGHTS)
    stored = read_checkpoint(WEIGHTS).state_dict
    assert set(model.state_dict()) == set(stored)
    for key, value in model.state_dict().items():
        assert torch.equal(value, stored[key].to(value.dtype)), key
    reference = load_model(WEIGHTS, "aasist_l").float().eval()
    wav = torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(model(wav), reference(wav), atol=1e-6)


@released
def test_init_from_refuses_another_architecture():
    from adf.checkpoints.files import CheckpointError

    with pytest.raises(CheckpointError, match="AASIST-L.pth.*does not fit.*'aasist'"):
        load_backbone_into(build_model("aasist"), WEIGHTS)


def test_raw_waveform_recipe_fine_tunes_from_its_post_trained_model(tmp_path):
    """run.sh stage 3 on AASIST-L: `--experiment finetune --init_from best_model` applies the
    file's `finetune:` settings (the tag) and starts from the post-trained weights."""
    from adf.train import main as train_main
    from tests.synth import toy_corpus

    root = tmp_path / "toy"
    toy_corpus(root, (8, 4, 4))
    hparams = str(ROOT / "recipes" / "posttrain" / "hparams" / "aasist_l.yaml")
    common = ["--data_folder", str(root), "--manifest_folder", str(root / "data"), "--noprogressbar",
              "--input_policy", "first-4000", "--max_batch_size", "4", "--number_of_epochs", "1"]
    assert train_main([hparams, *common, "--output_folder", str(tmp_path / "pt")]) == 0
    best = tmp_path / "pt" / "save" / "best_model.safetensors"
    assert train_main([hparams, *common, "--output_folder", str(tmp_path / "ft"), "--lr", "0",
                       "--experiment", "finetune", "--init_from", str(best)]) == 0
    # lr 0: fine-tuning changed no weight, so it started from the post-trained model
    before = read_checkpoint(best).state_dict
    after = read_checkpoint(tmp_path / "ft" / "save" / "best_model.safetensors").state_dict
    assert all(torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point()
               and "running_" not in k and "num_batches" not in k)
