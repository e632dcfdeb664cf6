"""Entry point shared by the recipes' train.py: `python train.py hparams/X.yaml [--key value ...]`.

Modes (hparam `mode`, overridable with `--mode`):
  train      post-train or fine-tune on `train_csv`, validating on `valid_csv`
  inference  score `test_csv` with the best model -> `<output_folder>/scores/<test_name>.csv`
  analysis   inference plus the pooled embeddings -> `.../scores/<test_name>.emb.npy`
Any hparam can be overridden on the command line (HyperPyYAML overrides);
SpeechBrain's run options (--device, --precision, --data_parallel_backend, ...)
pass through.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from adf.brain import SSLBrain
from adf.data.pipeline import batch_length, collate_skip_bad, load_dataset

logger = logging.getLogger(__name__)


def _train(hparams, run_opts):
    from speechbrain.dataio.sampler import DynamicBatchSampler

    if hparams.get("init_from"):
        from adf.checkpoints import load_backbone_into

        # Applied before SpeechBrain's recovery, so a resumed run keeps its own weights.
        load_backbone_into(hparams["model"], hparams["init_from"])
        logger.info("initialised from %s", hparams["init_from"])
    augment = hparams.get("augment")
    train_set = load_dataset(hparams["train_csv"], hparams["data_folder"], "train",
                             augment=augment, seed=hparams["seed"])
    valid_set = load_dataset(hparams["valid_csv"], hparams["data_folder"], "valid",
                             augment=augment, augment_valid=hparams.get("augment_valid", False),
                             seed=hparams["seed"])
    sampler = DynamicBatchSampler(
        train_set,
        max_batch_length=hparams["max_batch_seconds"],
        num_buckets=hparams["num_buckets"],
        length_func=batch_length,
        shuffle=True,
        batch_ordering="random",
        seed=hparams["seed"],
    )
    modules = {"model": hparams["model"]}
    if hparams.get("loss") == "ocsoftmax":
        modules["oc_softmax"] = hparams["oc_softmax"]
    brain = SSLBrain(modules=modules, opt_class=hparams["opt_class"], hparams=hparams,
                     run_opts=run_opts, checkpointer=hparams["checkpointer"])
    workers = hparams.get("num_workers", 0)
    brain.fit(
        hparams["epoch_counter"], train_set, valid_set,
        train_loader_kwargs={"batch_sampler": sampler, "collate_fn": collate_skip_bad,
                             "num_workers": workers},
        valid_loader_kwargs={"batch_size": hparams["valid_batch_size"],
                             "collate_fn": collate_skip_bad, "num_workers": workers},
    )
    return brain


def _best_model_path(hparams):
    path = os.path.join(hparams["save_folder"], "best_model.safetensors")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no trained model yet (run with --mode train first)")
    return path


def _score(hparams, run_opts, with_embeddings):
    """Score `test_csv` with the best model (or `score_ckpt`) through the shared engine."""
    import numpy as np

    from adf.checkpoints import load_model
    from adf.inference import manifest_items, score_items, write_score_csv

    ckpt = hparams.get("score_ckpt") or _best_model_path(hparams)
    device = run_opts.get("device") or "cpu"
    model = load_model(ckpt, model_name=hparams["model_name"], device=device)
    items, problems = manifest_items(hparams["test_csv"], hparams["data_folder"])
    for p in problems:
        logger.warning("skipping manifest row: %s", p)
    scores = []
    for score in score_items(model, items, batch_size=hparams.get("test_batch_size", 1), device=device,
                             precision=run_opts.get("eval_precision", "fp32"),
                             workers=hparams.get("num_workers", 0), embeddings=with_embeddings):
        if score.ok:
            scores.append(score)
        else:
            logger.warning("skipped %s (%s): %s", score.item.id, score.item.path, score.error)
    order = {item.id: i for i, item in enumerate(items)}
    scores.sort(key=lambda s: order[s.item.id])
    name = os.path.splitext(os.path.basename(hparams["test_csv"]))[0]
    out = os.path.join(hparams["output_folder"], "scores", f"{name}.csv")
    write_score_csv(scores, out)
    if with_embeddings:  # rows in the order of the score file's ids
        np.save(out[:-4] + ".emb.npy", np.stack([s.embedding for s in scores]))
    logger.info("%d of %d items scored -> %s", len(scores), len(items), out)
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    # SpeechBrain 1.1.2 parses options whose default is None (optimizer_step_limit) as strings.
    if isinstance(run_opts.get("optimizer_step_limit"), str):
        run_opts = dataclasses.replace(run_opts, optimizer_step_limit=int(run_opts.optimizer_step_limit))
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    mode = hparams.get("mode", "train")
    if mode == "train":
        if run_opts.get("distributed_launch") or os.environ.get("RANK") is not None:
            sb.utils.distributed.ddp_init_group(run_opts)
        _train(hparams, run_opts)
    elif mode in ("inference", "analysis"):
        _score(hparams, run_opts, with_embeddings=mode == "analysis")
    else:
        raise SystemExit(f"unknown mode {mode!r}: use train, inference or analysis")
    return 0
