"""Weight averaging: the mean of several checkpoints of one model.

TCM and WeDefense score the average of the N checkpoints with the best
validation EER rather than the single best one. Two ways in:

* training: hparams `average_best: N` (N >= 2) makes SSLBrain keep the N best
  checkpoints by validation EER (instead of one), and at the end of training
  `average_best_checkpoints` writes `<save_folder>/averaged_model.safetensors`,
  which `--mode inference` then scores;
* afterwards: `adf average A.safetensors B.safetensors ... -o OUT` averages adf
  checkpoints of the same architecture.

Floating-point tensors are averaged in float64 and cast back to their dtype;
integer tensors (BatchNorm's `num_batches_tracked`) are counters, not weights:
the first checkpoint's value is kept. torch is imported inside the functions, so
`adf --help` stays fast (adf.cli).
"""
from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

AVERAGED_NAME = "averaged_model.safetensors"


def average_state_dicts(state_dicts, where="checkpoints"):
    """The element-wise mean of `state_dicts` (a non-empty list with identical keys and shapes)."""
    import torch

    if not state_dicts:
        raise ValueError(f"{where}: nothing to average")
    first = state_dicts[0]
    for i, sd in enumerate(state_dicts[1:], start=2):
        if sd.keys() != first.keys():
            diff = sorted(set(sd) ^ set(first))[:5]
            raise ValueError(f"{where}: checkpoint {i} has other keys than the first ({diff})")
        bad = [k for k in first if sd[k].shape != first[k].shape]
        if bad:
            raise ValueError(f"{where}: checkpoint {i} has other shapes than the first ({bad[:5]})")
    out = {}
    for key, value in first.items():
        if value.is_floating_point():
            total = sum(sd[key].to(torch.float64) for sd in state_dicts)
            out[key] = (total / len(state_dicts)).to(value.dtype)
        else:
            out[key] = value.clone()
    return out


def best_checkpoints(checkpointer, n):
    """The `n` SpeechBrain checkpoints with the lowest validation EER, best first.

    A mid-epoch validation that falls on the epoch's last step is followed by the
    end-of-epoch one: two checkpoints of the same weights. Only one of each
    optimizer step is taken, so no weights count twice."""
    chosen, steps = [], set()
    for ckpt in checkpointer.find_checkpoints(min_key="EER"):
        step = ckpt.meta.get("optimizer_step")
        if step is not None and step in steps:
            continue
        steps.add(step)
        chosen.append(ckpt)
    return chosen[:n]


def average_best_checkpoints(checkpointer, model, n, path):
    """Average the `model` weights of the `n` best checkpoints into an adf checkpoint at `path`.

    `model` is the live model (its architecture and metadata are written; its
    own weights are left as they were). Returns the averaged checkpoints' EERs,
    or [] when there was no checkpoint to average.
    """
    import torch

    from adf.checkpoints import save_checkpoint

    chosen = best_checkpoints(checkpointer, n)
    if not chosen:
        logger.warning("average_best: no checkpoint with a validation EER to average")
        return []
    state_dicts = [torch.load(c.paramfiles["model"], map_location="cpu", weights_only=True) for c in chosen]
    averaged = average_state_dicts(state_dicts, where=checkpointer.checkpoints_dir)
    model = getattr(model, "module", model)  # unwrap DDP
    kept = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        model.load_state_dict(averaged)
        eers = [float(c.meta["EER"]) for c in chosen]
        save_checkpoint(model, path, extra={"averaged_from": [os.path.basename(str(c.path)) for c in chosen],
                                            "valid_EERs": [f"{e:.4f}" for e in eers]})
    finally:
        model.load_state_dict(kept)
    logger.info("averaged the %d best checkpoints (validation EER %s) -> %s",
                len(chosen), ", ".join(f"{e:.2f}%" for e in eers), path)
    return eers


# --- adf average ----------------------------------------------------------------------
def average_files(paths, out):
    """Average adf checkpoint files of one architecture into `out`; returns the model."""
    from adf.checkpoints import CheckpointError, load_model, save_checkpoint

    if len(paths) < 2:
        raise ValueError("adf average needs at least two checkpoints")
    models = [load_model(p) for p in paths]
    names = {m.name for m in models}
    if len(names) > 1:
        raise CheckpointError(f"cannot average different architectures: {', '.join(sorted(names))}")
    averaged = average_state_dicts([m.state_dict() for m in models], where=", ".join(map(str, paths)))
    model = models[0]
    model.load_state_dict(averaged)
    save_checkpoint(model, out, extra={"averaged_from": [os.path.basename(str(p)) for p in paths]})
    return model


def add_arguments(parser):
    parser.add_argument("ckpts", nargs="+", metavar="CKPT", help="adf checkpoints of one architecture")
    parser.add_argument("-o", "--output", required=True, help="write the averaged checkpoint here (.safetensors)")


def run(args):
    average_files(args.ckpts, args.output)
    print(f"averaged {len(args.ckpts)} checkpoints -> {args.output}")
    return 0
