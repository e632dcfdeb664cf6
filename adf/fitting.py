"""Fitting a detector that is not trained by gradient descent (the statistics detector).

`python train.py hparams/stats_trees.yaml` lands here from adf.train: the model's front-end
statistics of every training clip, one fit of its trees, the validation EER, and the same
outputs a trained model leaves (`save/best_model.safetensors` with the validation EER in its
metadata, a line in `train_log.txt`), so recipes, `adf detect` and the tables take it as they
take a network. Clips are read by the training pipeline (adf.data.pipeline) as test items:
whole, layer-normed, exactly what scoring gives the model. Unreadable clips are skipped and
reported; so are clips too short for the statistics.
"""
from __future__ import annotations

import logging
import os
import time

import numpy as np
import torch

logger = logging.getLogger(__name__)

FIT_KEYS = ("n_trees", "depth", "learning_rate", "seed")


def clip_statistics_of(model, csv_path, data_root, workers=0, what="clips"):
    """(statistics [N, F], labels [N], ids) of a manifest's readable clips, as the model sees them."""
    from adf.data.pipeline import collate_skip_bad, load_dataset
    from adf.progress import progress

    dataset = load_dataset(csv_path, data_root, "test", input_policy=model.input_policy)
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, collate_fn=collate_skip_bad, num_workers=workers)
    rows, labels, ids = [], [], []
    bar = progress(f"statistics of the {what}", "clip", 30)
    bar.total = len(dataset)
    for batch in loader:
        bar.update()
        if batch is None:  # unreadable: already reported by the pipeline
            continue
        wav = batch.wav.data[0]
        try:
            rows.append(model.statistics(wav))
        except ValueError as err:
            logger.warning("skipping %s: %s", batch.id[0], err)
            continue
        labels.append(int(batch.target[0]))
        ids.append(batch.id[0])
    bar.close()
    if not rows:
        raise ValueError(f"{csv_path}: none of its {len(dataset)} clips could be used (see the messages above)")
    return torch.stack(rows), np.array(labels), ids


def fit_detector(hparams):
    """Fit `hparams["model"]` on `train_csv`, report its EER on `valid_csv`, and write it to
    `<save_folder>/best_model.safetensors`; returns the validation EER in %."""
    from adf.checkpoints import save_checkpoint
    from adf.metrics import compute_eer

    if hparams.get("experiment") == "finetune" or hparams.get("init_from"):
        raise ValueError(f"model {hparams['model'].name!r} is fitted in one pass; it has no fine-tuning "
                         "and starts from no checkpoint: fit it on the target corpus instead")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError(f"model {hparams['model'].name!r} is fitted in one process: run train.py without torchrun")
    model = hparams["model"]
    workers = hparams.get("num_workers", 0)
    start = time.monotonic()
    train_x, train_y, _ = clip_statistics_of(model, hparams["train_csv"], hparams["data_folder"], workers,
                                             "training clips")
    valid_x, valid_y, _ = clip_statistics_of(model, hparams["valid_csv"], hparams["data_folder"], workers,
                                             "validation clips")
    options = {k: hparams[k] for k in FIT_KEYS if k in hparams}
    model.fit(train_x.numpy(), train_y, **options)
    with torch.no_grad():
        train_eer = 100 * compute_eer(model.score_statistics(train_x).numpy(), train_y)[0]
        valid_eer = 100 * compute_eer(model.score_statistics(valid_x).numpy(), valid_y)[0]
    seconds = time.monotonic() - start
    hparams["train_logger"].log_stats(
        stats_meta={"fit": f"{model.trees.n_trees} trees of depth {model.trees.depth}"},
        train_stats={"clips": len(train_y), "EER": round(train_eer, 2)},
        valid_stats={"clips": len(valid_y), "EER": round(valid_eer, 2)})
    path = os.path.join(hparams["save_folder"], "best_model.safetensors")
    os.makedirs(hparams["save_folder"], exist_ok=True)
    save_checkpoint(model, path, extra={"valid_EER": f"{valid_eer:.4f}", "train_clips": str(len(train_y)),
                                        "fit": options})
    logger.info("fitted %s on %d clips in %.0f s: train EER %.2f%%, validation EER %.2f%% -> %s",
                model.name, len(train_y), seconds, train_eer, valid_eer, path)
    return valid_eer
