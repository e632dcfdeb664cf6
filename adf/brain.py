"""SSLBrain: the one SpeechBrain `Brain` for post-training and fine-tuning.

On top of SpeechBrain's loop (autocast, gradient clipping, accumulation, DDP,
intra-epoch checkpoints) it adds what the AntiDeepfake recipes need:
validation every `valid_step` optimizer steps with the EER, keep-best-by-EER
checkpoints plus an exported best model, a warm-up + exponential-decay
learning rate (SpeechBrain's WarmAndExpDecayLRSchedule), and skipping of batches whose audio could not be read.
"""
from __future__ import annotations

import logging
import math
import os

import speechbrain as sb
import torch
import torch.nn.functional as F

from adf.data.pipeline import absolute_lengths

logger = logging.getLogger(__name__)


class SSLBrain(sb.Brain):
    """Brain for `SSLClassifier` (module key `model`); hparams documented in recipes' yaml."""

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, _ = batch.wav
        lengths = absolute_lengths(batch.wav)
        logits, emb = self.modules.model(wavs, lengths, return_embedding=True)
        return logits, emb

    def compute_objectives(self, predictions, batch, stage):
        logits, emb = predictions
        targets = batch.target.to(self.device)
        if getattr(self.hparams, "loss", "ce") == "ocsoftmax":
            loss, scores = self.modules.oc_softmax(emb.float(), targets)
        else:
            loss = F.cross_entropy(logits.float(), targets)
            scores = (logits[:, 1] - logits[:, 0]).float()
        if stage != sb.Stage.TRAIN:
            self._scores.append(scores.detach().cpu())
            self._targets.append(targets.detach().cpu())
        return loss

    # --- skipping unreadable audio --------------------------------------------
    def fit_batch(self, batch):
        if batch is None:  # every item of this batch was unreadable (already reported)
            return torch.tensor(0.0)
        return super().fit_batch(batch)

    def evaluate_batch(self, batch, stage):
        if batch is None:
            return torch.tensor(0.0)
        return super().evaluate_batch(batch, stage)

    # --- learning rate and mid-epoch validation --------------------------------
    def on_fit_batch_start(self, batch, should_step):
        if should_step:  # SpeechBrain's warm-up + exponential decay, one call per optimizer step
            self.hparams.lr_scheduler(self.optimizer)

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        if not should_step:
            return
        valid_step = getattr(self.hparams, "valid_step", 0)
        if valid_step and self.optimizer_step % valid_step == 0 and self._valid_loader is not None:
            self._validate_now()

    def _validate_now(self):
        """Validate mid-epoch; SpeechBrain's `_fit_valid` resets `self.step`, so keep it."""
        step, avg = self.step, self.avg_train_loss
        self._mid_epoch_valid = True
        self._fit_valid(self._valid_loader, self._epoch, self._progressbar)
        self._mid_epoch_valid = False
        self.step, self.avg_train_loss = step, avg
        self.modules.train()

    def fit(self, epoch_counter, train_set, valid_set=None, progressbar=None,
            train_loader_kwargs={}, valid_loader_kwargs={}):
        if valid_set is not None and not isinstance(valid_set, torch.utils.data.DataLoader):
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
        self._scores, self._targets = [], []

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            return
        scores = torch.cat(self._scores) if self._scores else torch.zeros(0)
        targets = torch.cat(self._targets) if self._targets else torch.zeros(0, dtype=torch.long)
        stats = {"loss": stage_loss, "EER": self._eer_percent(scores, targets)}
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
        if tb is not None and sb.utils.distributed.if_main_process():
            tb.log_stats({"optimizer_step": self.optimizer_step, "lr": lr},
                         train_stats=train, valid_stats=stats)
        eer = stats["EER"] if not math.isnan(stats["EER"]) else 100.0
        # The checkpointer keeps the best-by-EER checkpoint plus the most recent one.
        self.checkpointer.save_and_keep_only(
            meta={"EER": eer, "optimizer_step": self.optimizer_step},
            min_keys=["EER"], num_to_keep=1, keep_recent=True,
            end_of_epoch=not self._mid_epoch_valid,
        )
        # Export exactly the checkpointer's choice (ties included): when the
        # best-by-EER checkpoint is the one just written, it is the new best.
        best = self.checkpointer.find_checkpoint(min_key="EER")
        if best is not None and best.path == self.checkpointer.find_checkpoint().path:
            self._export_best(eer)

    @sb.utils.distributed.main_process_only
    def _export_best(self, eer):
        """Write the best model as a self-describing checkpoint for fine-tuning and `adf detect`."""
        from adf.checkpoints import save_checkpoint

        path = os.path.join(self.hparams.save_folder, "best_model.safetensors")
        save_checkpoint(self.raw_modules["model"], path,
                        extra={"valid_EER": f"{eer:.4f}", "optimizer_step": str(self.optimizer_step)})
        logger.info("new best validation EER %.2f%% -> %s", eer, path)
