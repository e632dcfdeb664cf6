"""SSLBrain: the one SpeechBrain `Brain` for post-training and fine-tuning.

On top of SpeechBrain's loop (autocast, gradient clipping, accumulation, DDP,
intra-epoch checkpoints) it adds what the AntiDeepfake recipes need:
validation every `valid_step` optimizer steps with the EER, keep-best-by-EER
checkpoints plus an exported best model, a warm-up + exponential-decay
learning rate (SpeechBrain's WarmAndExpDecayLRSchedule), and skipping of batches whose audio could not be read.

Multi-GPU (torchrun, DDP): every rank trains on its share of the dynamic
batches (DistributedBatchSampler) and validates on its share of the validation
set; the scores are gathered so every rank computes the same EER from the
whole set. Only rank 0 writes logs, checkpoints and the exported best model.
Crash safety: SpeechBrain's intra-epoch checkpoints (`ckpt_interval_steps` /
`ckpt_interval_minutes`) hold the model, optimizer, scheduler, step counters
and data-loader position; `RandomStates` adds the global RNGs, and the data
pipeline draws crops per item and epoch, so a resumed run continues exactly.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random

import numpy as np
import speechbrain as sb
import torch
import torch.distributed as dist
import torch.nn.functional as F
from speechbrain.utils.checkpoints import mark_as_loader, mark_as_saver, register_checkpoint_hooks
from speechbrain.utils.distributed import if_main_process, is_distributed_initialized

from adf.data.pipeline import DistributedBatchSampler, absolute_lengths

logger = logging.getLogger(__name__)


def _gather(obj):
    """The list of `obj` from every DDP rank (just [obj] without DDP)."""
    if not is_distributed_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


class RandomStates:
    """Checkpoint recoverable for the global RNGs (torch, CUDA, numpy, random) of every rank.

    SpeechBrain restores model, optimizer and counters but not the RNGs, so
    dropout and layer drop would draw other masks after a resume. Each rank's
    state is gathered and rank 0 writes them all (JSON, no pickle).
    """

    @mark_as_saver
    def save(self, path):
        state = {
            "torch": torch.get_rng_state().tolist(),
            "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
            "numpy": [v.tolist() if isinstance(v, np.ndarray) else v for v in np.random.get_state()],
            "random": random.getstate(),
        }
        states = _gather(state)
        if if_main_process():
            with open(path, "w", encoding="utf-8") as fout:
                json.dump(states, fout)

    @mark_as_loader
    def load(self, path, end_of_epoch):
        del end_of_epoch
        with open(path, encoding="utf-8") as fin:
            states = json.load(fin)
        rank = dist.get_rank() if is_distributed_initialized() else 0
        if rank >= len(states):  # resumed on more processes than were saved
            logger.warning("%s holds %d rank(s); rank %d keeps its own RNG state", path, len(states), rank)
            return
        state = states[rank]
        torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
        if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
        version, internal, gauss = state["random"]
        random.setstate((version, tuple(internal), gauss))


# The saver gathers from every rank, so it must run on all of them.
register_checkpoint_hooks(RandomStates, save_on_main_only=False)

COMPLETE = "complete"


@register_checkpoint_hooks
class CompletionMarker:
    """The last file of a checkpoint: its presence proves every other file was written.

    SpeechBrain writes a checkpoint's meta file first, so a run killed while
    saving leaves a directory that looks like the newest checkpoint but lacks
    files; SSLBrain resumes only from checkpoints holding this marker.
    """

    @mark_as_saver
    def save(self, path):
        with open(path, "w", encoding="utf-8") as fout:
            fout.write("complete\n")

    @mark_as_loader
    def load(self, path, end_of_epoch):
        del path, end_of_epoch


def is_complete(checkpoint):
    return COMPLETE in checkpoint.paramfiles


# SpeechBrain internals SSLBrain relies on, where no public hook does the job:
# name -> (how SSLBrain uses it, why, sha256[:16] of the upstream source).
# Checked against SpeechBrain SPEECHBRAIN_CHECKED; tests/test_brain.py fails when
# an upstream source changes, or when SSLBrain overrides a private method not listed.
SPEECHBRAIN_CHECKED = "1.1.2"
SPEECHBRAIN_INTERNALS = {
    "_train_loader_specifics": (
        "overridden", "batch samplers: DistributedBatchSampler instead of DistributedSamplerWrapper, "
        "and set_epoch outside DDP", "85c6175edb0c8c00"),
    "_fit_valid": ("called", "validation every `valid_step` optimizer steps, mid-epoch", "e00879201cd6b1b0"),
    "_compile": ("called", "on_fit_start: SpeechBrain's start-up before resuming", "98937a1662a3a953"),
    "_wrap_distributed": ("called", "on_fit_start: SpeechBrain's start-up before resuming", "a335394106ad9cde"),
    "on_fit_start": (
        "replicated", "its steps, with recover_if_possible limited to complete checkpoints "
        "(it has no predicate option)", "d34dfed5cfa3d3c1"),
}


class SSLBrain(sb.Brain):
    """Brain for `SSLClassifier` (module key `model`); hparams documented in recipes' yaml."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        model = self.modules["model"]
        # DDP must be told when some parameters get no gradient in a step:
        # skipped layers with layer drop.
        if not self.find_unused_parameters and (
            getattr(model, "config", {}).get("encoder_layer_drop", 0) > 0
        ):
            self.find_unused_parameters = True
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("random_states", RandomStates(), optional_load=True)
        # targets: frames trains the head on every backbone frame (adf.localisation); validation
        # then reports the EER over frames (20 ms segments) instead of utterances
        self._frames_mode = getattr(self.hparams, "targets", "utterance") == "frames"

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, _ = batch.wav
        lengths = absolute_lengths(batch.wav)
        if self._frames_mode:
            return self.modules.model(wavs, lengths, return_frames=True)
        logits, emb = self.modules.model(wavs, lengths, return_embedding=True)
        return logits, emb

    def _class_weights(self, device):
        # class_weights [fake, real]: the fixed-input systems' recipes weight bona fide 9x spoof
        weights = getattr(self.hparams, "class_weights", None)
        return None if weights is None else torch.as_tensor(weights, dtype=torch.float32, device=device)

    def _frame_objectives(self, predictions, batch, stage):
        """Cross-entropy over the valid frames of the batch against the items' frame targets."""
        frame_logits, frame_lengths = predictions
        targets = batch.frame_target[0].to(self.device).long()
        n = min(frame_logits.shape[1], targets.shape[1])
        frame_logits, targets = frame_logits[:, :n], targets[:, :n]
        valid_n = absolute_lengths(batch.frame_target).to(self.device).clamp(max=n)
        if frame_lengths is not None:
            valid_n = torch.minimum(valid_n, frame_lengths.to(self.device))
        valid = torch.arange(n, device=self.device)[None, :] < valid_n[:, None]
        loss = F.cross_entropy(frame_logits[valid].float(), targets[valid],
                               weight=self._class_weights(frame_logits.device))
        if stage != sb.Stage.TRAIN:
            scores = (frame_logits[..., 1] - frame_logits[..., 0]).float().detach().cpu()
            valid, targets = valid.cpu(), targets.cpu()
            for i, item_id in enumerate(batch.id):
                self._ids.append(item_id)
                self._frame_scores.append(scores[i][valid[i]])
                self._frame_targets.append(targets[i][valid[i]])
            self._loss_sum += float(loss) * len(batch.id)
        return loss

    def compute_objectives(self, predictions, batch, stage):
        if self._frames_mode:
            return self._frame_objectives(predictions, batch, stage)
        logits, emb = predictions
        targets = batch.target.to(self.device)
        if stage == sb.Stage.TRAIN and getattr(self, "_grpo", None) is not None:
            wavs, _ = batch.wav  # the frozen reference (and v1 old policy) score the same batch
            loss, self.grpo_stats = self._grpo.loss(logits, targets, wavs, absolute_lengths(batch.wav))
        else:  # cross-entropy (method ce/sft), and validation of every method
            loss = F.cross_entropy(logits.float(), targets, weight=self._class_weights(logits.device))
        aux = getattr(getattr(self.modules.model, "module", self.modules.model), "aux_loss", None)
        if aux is not None and stage == sb.Stage.TRAIN:
            loss = loss + aux.float()  # a back-end's own term, e.g. VIB's beta * KL
        if "oc_softmax" in self.modules:  # adf.train adds it for `loss: ocsoftmax` (the one loss switch)
            # OC-softmax shapes the embedding space; the linear head keeps
            # training beside it, so every scorer (validation, adf detect,
            # the recipes) reads the same [fake, real] logits.
            oc_loss, _ = self.modules.oc_softmax(emb.float(), targets)
            loss = loss + oc_loss
        scores = (logits[:, 1] - logits[:, 0]).float()
        if stage != sb.Stage.TRAIN:
            self._ids.extend(batch.id)
            self._scores.append(scores.detach().cpu())
            self._targets.append(targets.detach().cpu())
            self._loss_sum += float(loss) * len(batch.id)
        return loss

    # --- skipping unreadable audio --------------------------------------------
    def fit_batch(self, batch):
        self._batches_seen += 1
        if batch is None:  # every item of this batch was unreadable (already reported)
            return torch.tensor(0.0)
        self._batches_read += 1
        return super().fit_batch(batch)

    def evaluate_batch(self, batch, stage):
        self._batches_seen += 1
        if batch is None:
            return torch.tensor(0.0)
        self._batches_read += 1
        return super().evaluate_batch(batch, stage)

    def _stop_if_nothing_was_read(self, stage):
        """Skipping unreadable audio must not turn into training on nothing: when
        every batch of a stage (on every rank) was unreadable, stop with the reason
        (a wrong --data_folder, typically) instead of logging a loss of 0."""
        seen, read = (sum(x) for x in zip(*_gather((self._batches_seen, self._batches_read))))
        if seen and not read:
            name = str(stage).split(".")[-1].lower()
            raise SystemExit(
                f"{name}: none of the {seen} batches could be read: every item was skipped as "
                "unreadable (see the 'skipping unreadable audio' messages above); check "
                f"--data_folder ({getattr(self.hparams, 'data_folder', '?')}) and the manifests' Path column")

    # --- learning rate and mid-epoch validation --------------------------------
    def on_fit_batch_start(self, batch, should_step):
        if should_step:  # SpeechBrain's warm-up + exponential decay, one call per optimizer step
            self.hparams.lr_scheduler(self.optimizer)

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        if not should_step:
            return
        if getattr(self, "_grpo", None) is not None:
            self._grpo.maybe_refresh(self.modules.model, self.optimizer_step)
        valid_step = getattr(self.hparams, "valid_step", 0)
        if valid_step and self.optimizer_step % valid_step == 0 and self._valid_loader is not None:
            self._validate_now()

    def _validate_now(self):
        """Validate mid-epoch; SpeechBrain's `_fit_valid` resets `self.step` and the
        stage's batch counts, so keep the training stage's."""
        step, avg, counts = self.step, self.avg_train_loss, (self._batches_seen, self._batches_read)
        self._mid_epoch_valid = True
        self._fit_valid(self._valid_loader, self._epoch, self._progressbar)
        self._mid_epoch_valid = False
        self.step, self.avg_train_loss = step, avg
        self._batches_seen, self._batches_read = counts
        self.modules.train()

    def on_fit_start(self):
        """SpeechBrain's start-up (compile, DDP wrap, optimizer), then resume from the
        newest *complete* checkpoint (see CompletionMarker)."""
        if getattr(self.hparams, "method", "ce") == "grpo":  # reference = the weights before any resume
            from adf.grpo import from_hparams

            self._grpo = from_hparams(self.modules.model, self.hparams)
        self._compile()
        self._wrap_distributed()
        self.init_optimizers()
        if self.checkpointer is not None:
            # Registered last: saved after the optimizer and data loader files.
            self.checkpointer.add_recoverable(COMPLETE, CompletionMarker(), optional_load=True)
            ckpt = self.checkpointer.recover_if_possible(ckpt_predicate=is_complete)
            if ckpt is not None:
                logger.info("resumed from %s (optimizer step %d)", ckpt.path, self.optimizer_step)
                if getattr(self, "_grpo", None) is not None:
                    self._grpo.refresh(self.modules.model)

    # --- data loaders ---------------------------------------------------------------
    def _train_loader_specifics(self, dataset, loader_kwargs):
        """Shard a batch sampler across DDP ranks, and register it for `set_epoch`.

        Overrides SpeechBrain's version for batch samplers only: it wraps them in
        `DistributedSamplerWrapper`, which mishandles a one-batch share (see
        DistributedBatchSampler), and outside DDP it never calls the sampler's
        `set_epoch`, so every epoch would see the same batch order.
        """
        batch_sampler = loader_kwargs.get("batch_sampler")
        if batch_sampler is None:
            return super()._train_loader_specifics(dataset, loader_kwargs)
        if self.distributed_launch:
            batch_sampler = DistributedBatchSampler(
                batch_sampler, rank=self.rank, shuffle=True, seed=getattr(self.hparams, "seed", 0))
            loader_kwargs = dict(loader_kwargs, batch_sampler=batch_sampler)
        self.train_sampler = batch_sampler
        return loader_kwargs

    def fit(self, epoch_counter, train_set, valid_set=None, progressbar=None,
            train_loader_kwargs={}, valid_loader_kwargs={}):
        self._train_randomness = getattr(train_set, "randomness", None)
        if valid_set is not None and not isinstance(valid_set, torch.utils.data.DataLoader):
            if self.distributed_launch:  # each rank scores its share; on_stage_end gathers
                valid_loader_kwargs = dict(valid_loader_kwargs, sampler=torch.utils.data.DistributedSampler(
                    valid_set, rank=self.rank, shuffle=False))
            valid_set = self.make_dataloader(valid_set, stage=sb.Stage.VALID, ckpt_prefix=None,
                                             **valid_loader_kwargs)
        self._valid_loader = valid_set
        self._mid_epoch_valid = False
        if progressbar is None:
            progressbar = not self.noprogressbar
        self._progressbar = progressbar and sb.utils.distributed.if_main_process()
        return super().fit(epoch_counter, train_set, valid_set, progressbar,
                           train_loader_kwargs, valid_loader_kwargs)

    # --- stages -------------------------------------------------------------------
    def on_stage_start(self, stage, epoch=None):
        self._epoch = epoch
        self._ids, self._scores, self._targets, self._loss_sum = [], [], [], 0.0
        self._frame_scores, self._frame_targets = [], []  # per item, targets: frames
        self._batches_seen = self._batches_read = 0
        if stage == sb.Stage.TRAIN and getattr(self, "_train_randomness", None) is not None:
            self._train_randomness.set_epoch(epoch)  # crops/augmentation drawn per item and epoch

    def _gathered_scores(self):
        """(scores, targets, mean loss) over the whole evaluated set, identical on every rank.

        Under DDP each rank scored a share (DistributedSampler repeats a few
        items to even the shares out); the shares are gathered and each item
        is counted once, so the EER is that of the full set.
        """
        scores = torch.cat(self._scores) if self._scores else torch.zeros(0)
        targets = torch.cat(self._targets) if self._targets else torch.zeros(0, dtype=torch.long)
        if self._frames_mode:  # one tensor of frames per item
            scores, targets = self._frame_scores, self._frame_targets
        shares = _gather((self._ids, scores, targets, self._loss_sum))
        seen, keep_scores, keep_targets = set(), [], []
        for ids, sc, tg, _ in shares:
            for i, item_id in enumerate(ids):
                if item_id not in seen:
                    seen.add(item_id)
                    keep_scores.append(sc[i])
                    keep_targets.append(tg[i])
        n_scored = sum(len(ids) for ids, *_ in shares)
        loss = sum(share[3] for share in shares) / max(n_scored, 1)
        if not keep_scores:
            return torch.zeros(0), torch.zeros(0, dtype=torch.long), loss
        # an utterance's score is 0-d, an item's frame scores 1-d: one flat tensor either way
        return (torch.cat([s.reshape(-1) for s in keep_scores]),
                torch.cat([t.reshape(-1) for t in keep_targets]), loss)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        self._stop_if_nothing_was_read(stage)
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        scores, targets, loss = self._gathered_scores()
        stats = {"loss": loss, "EER": self._eer_percent(scores, targets)}
        if stage == sb.Stage.VALID:
            self._end_of_validation(stats, epoch)
        else:
            self.test_stats = stats
            self.hparams.train_logger.log_stats(
                {"Epoch loaded": self.hparams.epoch_counter.current}, test_stats=stats)

    @staticmethod
    def _eer_percent(scores, targets):
        from adf.metrics import compute_eer

        if len(scores) == 0 or targets.min() == targets.max():
            return float("nan")  # EER needs both classes
        eer, _ = compute_eer(scores.numpy(), targets.numpy())
        return 100.0 * float(eer)

    def _end_of_validation(self, stats, epoch):
        lr = self.optimizer.param_groups[0]["lr"]
        meta = {"epoch": epoch, "optimizer_step": self.optimizer_step, "lr": lr}
        train = {"loss": getattr(self, "train_loss", float("nan")) if not self._mid_epoch_valid
                 else self.avg_train_loss}
        self.hparams.train_logger.log_stats(meta, train_stats=train, valid_stats=stats)
        tb = getattr(self.hparams, "tensorboard_logger", None)
        if tb is not None:  # on every rank: log_stats is main-only, then broadcasts
            tb.log_stats({"optimizer_step": self.optimizer_step, "lr": lr},
                         train_stats=train, valid_stats=stats)
        eer = stats["EER"] if not math.isnan(stats["EER"]) else 100.0
        # The checkpointer keeps the best-by-EER checkpoint plus the most recent one
        # (the `average_best` best ones when they are to be averaged, adf.averaging).
        self.checkpointer.save_and_keep_only(
            meta={"EER": eer, "optimizer_step": self.optimizer_step},
            min_keys=["EER"], num_to_keep=max(1, getattr(self.hparams, "average_best", 0) or 0),
            keep_recent=True,
            end_of_epoch=not self._mid_epoch_valid,
        )
        if self._saved_checkpoint_is_best():
            self._export_best(eer)

    @sb.utils.distributed.main_process_only
    def _saved_checkpoint_is_best(self):
        """Whether the checkpoint just written is the checkpointer's best-by-EER choice
        (ties included), so the export is exactly that choice. Decided on rank 0 and
        broadcast, so every rank takes the same branch."""
        best = self.checkpointer.find_checkpoint(min_key="EER")
        return best is not None and best.path == self.checkpointer.find_checkpoint().path

    @sb.utils.distributed.main_process_only
    def _export_best(self, eer):
        """Write the best model as a self-describing checkpoint for fine-tuning and `adf detect`."""
        from adf.checkpoints import save_checkpoint

        path = os.path.join(self.hparams.save_folder, "best_model.safetensors")
        model = self.modules["model"]
        model = getattr(model, "module", model)  # unwrap DDP
        save_checkpoint(model, path,
                        extra={"valid_EER": f"{eer:.4f}", "optimizer_step": str(self.optimizer_step)})
        logger.info("new best validation EER %.2f%% -> %s", eer, path)
