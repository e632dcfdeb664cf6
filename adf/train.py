"""Entry point shared by the recipes' train.py: `python train.py hparams/X.yaml [--key value ...]`.

Modes (hparam `mode`, overridable with `--mode`):
  train      post-train or fine-tune on `train_csv`, validating on `valid_csv`
  inference  score `test_csv` with the best model -> `<output_folder>/scores/<test_name>.csv`
  analysis   inference plus the pooled embeddings -> `.../scores/<test_name>.emb.npy`
A model's hparams file may name a `base:` file it changes, and `--experiment
finetune` applies the file's `finetune:` overrides (adf.hparams).
Any hparam can be overridden on the command line (HyperPyYAML overrides);
SpeechBrain's run options (--device, --precision, --grad_accumulation_factor,
--ckpt_interval_steps, ...) pass through, and those the yaml also defines reach
its references (e.g. --optimizer_step_limit sets the schedule's length).
Several GPUs or nodes: run under torchrun (`torchrun --nproc_per_node=8 train.py
...`, add `--distributed_backend gloo` on CPUs); see recipes/README.md.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml

from adf.audio import TARGET_SR
from adf.brain import SSLBrain
from adf.input_policy import get_policy, policy_of
from adf.hparams import overrides_for, read_chain
from adf.data.pipeline import MAX_TRAIN_SECONDS, collate_skip_bad, dynamic_batches, load_dataset

logger = logging.getLogger(__name__)


def _train(hparams, run_opts):
    import torch

    if hparams.get("init_from"):
        from adf.checkpoints import load_backbone_into

        # Applied before SpeechBrain's recovery, so a resumed run keeps its own weights.
        load_backbone_into(hparams["model"], hparams["init_from"])
        logger.info("initialised from %s", hparams["init_from"])
    augment = hparams.get("augment")
    if getattr(augment, "algo", None) == 0:  # RawBoost algorithm 0 changes nothing
        augment = None
    crop = dict(max_seconds=hparams.get("crop_max_seconds", MAX_TRAIN_SECONDS),
                min_seconds=hparams.get("crop_min_seconds", 10.0))
    # The input policy (adf.input_policy): the hparams' `input_policy`, else the
    # model's own; the model records it, so its checkpoints are scored the same way.
    model = hparams["model"]
    policy = get_policy(hparams.get("input_policy") or policy_of(model))
    model.input_policy = policy.name
    frame_layers = _frame_layers(hparams)
    train_set = load_dataset(hparams["train_csv"], hparams["data_folder"], "train",
                             augment=augment, seed=hparams["seed"], input_policy=policy,
                             random_window=hparams.get("random_training_window", True),
                             frame_layers=frame_layers, **crop)
    valid_set = load_dataset(hparams["valid_csv"], hparams["data_folder"], "valid",
                             augment=augment, augment_valid=hparams.get("augment_valid", False),
                             seed=hparams["seed"], input_policy=policy, frame_layers=frame_layers, **crop)
    # a fixed-input item is at most the policy's length long (shorter ones are tiled)
    batch_max_seconds = policy.samples / TARGET_SR if policy.fixed else crop["max_seconds"]
    sampler = dynamic_batches(train_set, hparams["max_batch_seconds"], hparams["num_buckets"],
                              seed=hparams["seed"], max_batch_size=hparams.get("max_batch_size"),
                              max_seconds=batch_max_seconds)
    modules = {"model": hparams["model"]}
    if hparams.get("loss") == "ocsoftmax":
        from adf.models.losses import OCSoftmax

        if getattr(hparams["model"], "backend_name", None) != "mean":
            raise SystemExit("loss ocsoftmax needs an SSL model with the mean back-end "
                             f"(model {getattr(hparams['model'], 'name', '?')!r} has another head)")

        oc = hparams.get("oc_softmax") or OCSoftmax(hparams["model"].embed_dim)
        modules["oc_softmax"] = oc
        hparams["checkpointer"].add_recoverable("oc_softmax", oc)
    elif hparams.get("loss", "ce") != "ce":
        raise SystemExit(f"unknown loss {hparams['loss']!r}: use ce or ocsoftmax")
    if hparams.get("method", "ce") not in ("ce", "sft", "grpo"):
        raise SystemExit(f"unknown fine-tuning method {hparams['method']!r}: use ce, sft or grpo")
    limit, warmup = hparams.get("optimizer_step_limit"), hparams.get("warmup_steps", 0)
    if hparams.get("method") == "grpo" and limit and warmup >= limit:
        # The reference's GRPO recipe had this: its learning rate never left the warm-up.
        raise SystemExit(f"warmup_steps ({warmup}) must be below optimizer_step_limit ({limit}) "
                         "for GRPO: lower --warmup_steps")
    brain = SSLBrain(modules=modules, opt_class=hparams["opt_class"], hparams=hparams,
                     run_opts=run_opts, checkpointer=hparams["checkpointer"])
    workers = hparams.get("num_workers", 0)
    brain.fit(
        hparams["epoch_counter"], train_set, valid_set,
        # The loader's own generator: creating its iterator must not consume the
        # global RNG, or a resumed run would draw other dropout masks.
        train_loader_kwargs={"batch_sampler": sampler, "collate_fn": collate_skip_bad,
                             "num_workers": workers,
                             "generator": torch.Generator().manual_seed(hparams["seed"])},
        valid_loader_kwargs={"batch_size": hparams["valid_batch_size"],
                             "collate_fn": collate_skip_bad, "num_workers": workers},
    )
    if (hparams.get("average_best") or 0) >= 2 and sb.utils.distributed.if_main_process():
        from adf.averaging import AVERAGED_NAME, average_best_checkpoints

        average_best_checkpoints(hparams["checkpointer"], hparams["model"], hparams["average_best"],
                                 os.path.join(hparams["save_folder"], AVERAGED_NAME))
    return brain


def _frame_layers(hparams):
    """The backbone CNN's layers when training with frame targets (`targets: frames`), else None."""
    targets = hparams.get("targets", "utterance")
    if targets == "utterance":
        return None
    if targets != "frames":
        raise SystemExit(f"unknown targets {targets!r}: use utterance or frames")
    model = hparams["model"]
    if not hasattr(getattr(model, "head", None), "frame_logits"):
        raise SystemExit(f"targets: frames needs an SSL model with the mean back-end "
                         f"(model {getattr(model, 'name', '?')!r} gives no frame logits)")
    if hparams.get("method", "ce") == "grpo" or hparams.get("loss", "ce") != "ce":
        raise SystemExit("targets: frames trains with cross-entropy only (method ce, loss ce)")
    return model.config["extractor_conv_layer_config"]


PRECISION_OPTIONS = ("precision", "eval_precision")


def _take_auto_precision(argv):
    """argv without `--precision auto` / `--eval_precision auto` (SpeechBrain's
    parser knows only explicit names), and the options that said auto."""
    rest, auto = [], set()
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, _, value = arg.partition("=")
        if name[2:] in PRECISION_OPTIONS and name.startswith("--"):
            if not value and i + 1 < len(argv):
                value, i = argv[i + 1], i + 1
            if value == "auto":
                auto.add(name[2:])
                i += 1
                continue
            rest.append(f"{name}={value}")
        else:
            rest.append(arg)
        i += 1
    return rest, auto


def _resolve_precisions(hparams, run_opts):
    """Run options with `precision` and `eval_precision` resolved: "auto" (in
    the hparams or on the command line) becomes bf16 where the device computes
    it natively, else fp32 (adf.precision.resolve)."""
    from adf.precision import resolve

    device = run_opts["device"] or "cpu"
    resolved = {}
    for key in PRECISION_OPTIONS:
        requested = run_opts[key] if key in run_opts.overridden_args else hparams.get(key, run_opts[key])
        choice = resolve(requested, device, purpose="training")
        logger.info("%s %s [%s]", key.replace("_", " "), choice.precision, choice.reason)
        hparams[key] = resolved[key] = choice.precision
    return dataclasses.replace(run_opts, **resolved)


def _best_model_path(hparams):
    name = "best_model.safetensors"
    if (hparams.get("average_best") or 0) >= 2:  # the average of the N best (adf.averaging)
        from adf.averaging import AVERAGED_NAME as name
    path = os.path.join(hparams["save_folder"], name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no trained model yet (run with --mode train first)")
    return path


def _score(hparams, run_opts, with_embeddings):
    """Score `test_csv` with the best model (or `score_ckpt`) through the shared engine."""
    import numpy as np

    from adf.inference import load_detector, manifest_items, score_items
    from adf.scorefile import write_score_csv

    ckpt = hparams.get("score_ckpt") or _best_model_path(hparams)
    device = run_opts.get("device") or "cpu"
    model, choice = load_detector(ckpt, hparams["model_name"], device, run_opts.get("eval_precision", "fp32"))
    items, problems = manifest_items(hparams["test_csv"], hparams["data_folder"])
    for p in problems:
        logger.warning("skipping manifest row: %s", p)
    scores = []
    for score in score_items(model, items, batch_size=hparams.get("test_batch_size", 1), device=device,
                             precision=choice.precision,
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


def _share_run_options(hparams_keys, run_opts, overrides):
    """Let hparams see run options given on the command line.

    SpeechBrain takes e.g. `--optimizer_step_limit 5` as a run option only
    (as a string: its default is None), so the yaml's own key, which the
    learning-rate schedule refers to, would keep its old value. Returns the
    run options (step limit as int) and the overrides plus every such option
    that the yaml also defines.
    """
    if isinstance(run_opts["optimizer_step_limit"], str):
        run_opts = dataclasses.replace(run_opts, optimizer_step_limit=int(run_opts["optimizer_step_limit"]))
    given = run_opts.overridden_args
    extra = [f"{key}: {run_opts[key]}" for key in sorted(given) if key in hparams_keys]
    # The two intra-epoch checkpoint intervals exclude each other: one given on the
    # command line replaces the hparams' other one.
    for key, other in (("ckpt_interval_steps", "ckpt_interval_minutes"),
                       ("ckpt_interval_minutes", "ckpt_interval_steps")):
        if key in given and other not in given and run_opts[key] > 0:
            extra.append(f"{other}: 0")
    return run_opts, "\n".join([overrides] + extra if overrides else extra)


def main(argv=None):
    """Run a recipe; a user error (bad hparams key, manifest, checkpoint, ...) ends
    it with one line and exit status 2 (the traceback with ADF_DEBUG=1; SpeechBrain
    already owns --debug)."""
    from adf.errors import user_error_message

    try:
        return _main(argv)
    except Exception as err:  # noqa: BLE001 - user errors become one line; others re-raise
        message = None if os.environ.get("ADF_DEBUG") else user_error_message(err)
        if message is None:
            raise
        print(f"{os.path.basename(sys.argv[0]) or 'train.py'}: error: {message}", file=sys.stderr)
        return 2


def _main(argv=None):
    from adf.hparams_check import check_hparams

    argv = sys.argv[1:] if argv is None else argv
    argv, auto = _take_auto_precision(argv)
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    chain = read_chain(hparams_file)
    with open(chain.root, encoding="utf-8") as fin:
        check_hparams(fin.read(), overrides, hparams_file, extra_keys=chain.deltas)
    if auto:
        run_opts = dataclasses.replace(run_opts, **{k: "auto" for k in auto},
                                       overridden_args=run_opts.overridden_args | auto)
    run_opts, overrides = _share_run_options(chain.keys(), run_opts, overrides)
    overrides = overrides_for(chain, overrides)
    # Under torchrun (RANK set) join the process group before anything else, so
    # that only rank 0 creates the experiment folder, TensorBoard writer and logs.
    sb.utils.distributed.ddp_init_group(run_opts)
    main_process = sb.utils.distributed.if_main_process()
    if not main_process:  # rank 0 first: loading hparams creates folders (Checkpointer)
        sb.utils.distributed.ddp_barrier()
    with open(chain.root, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    if main_process:
        sb.utils.distributed.ddp_barrier()
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=str(chain.root),
        overrides=overrides,
    )
    run_opts = _resolve_precisions(hparams, run_opts)
    mode = hparams.get("mode", "train")
    if mode == "train" and str(run_opts.get("device") or "cpu").startswith("cpu"):
        from adf.cpu_memory import keep_freed_memory

        if keep_freed_memory():  # about twice as fast on the CPU, same numbers (adf.cpu_memory)
            logger.info("CPU training: large freed buffers stay in the process (glibc malloc settings)")
    finished = False
    try:
        if mode == "train" and getattr(hparams["model"], "fitted_in_one_pass", False):
            from adf.fitting import fit_detector

            fit_detector(hparams)  # trees, not gradient descent (adf.fitting)
        elif mode == "train":
            _train(hparams, run_opts)
        elif mode in ("inference", "analysis"):
            _score(hparams, run_opts, with_embeddings=mode == "analysis")
        else:
            raise SystemExit(f"unknown mode {mode!r}: use train, inference or analysis")
        finished = True
    finally:
        _shut_down(hparams, wait_for_ranks=finished)
    return 0


def _shut_down(hparams, wait_for_ranks):
    """Flush TensorBoard and leave the process group before the interpreter exits:
    a gloo/NCCL group torn down by interpreter exit can abort the process
    ("terminate called without an active exception") after training finished."""
    tb = hparams.get("tensorboard_logger")
    if tb is not None and getattr(tb, "writer", None) is not None:
        tb.writer.close()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        if wait_for_ranks:  # after a failure the other ranks may never arrive
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()
