"""Manifest -> SpeechBrain dataset -> padded batches, as the reference loader does.

One audio pipeline serves every stage; only the stage decides whether clips
are cropped and augmented (shared/datasets.md §1.2). Unreadable audio does
not stop a run: the item is reported once (file + problem) and dropped from
its batch by `collate_skip_bad`.
"""
from __future__ import annotations

import logging

import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataset import DynamicItemDataset

from adf.audio import TARGET_SR, AudioError, random_crop, read_audio, resample, to_mono, waveform_layer_norm
from adf.data.manifest import SEGMENT_COLUMNS, read_manifest

logger = logging.getLogger(__name__)

LABEL_TO_TARGET = {"fake": 0, "real": 1}
# Training crops clips longer than this (seconds), so it also bounds the
# length a clip adds to a dynamic batch.
MAX_TRAIN_SECONDS = 13.0


def load_dataset(csv_path, data_root, stage, augment=None, augment_valid=False,
                 crop=True, max_seconds=MAX_TRAIN_SECONDS, min_seconds=10.0, seed=None):
    """A DynamicItemDataset over a manifest with items `id`, `wav`, `target`, `duration`.

    stage: "train", "valid" or "test". Train and valid clips longer than
    `max_seconds` are randomly cropped (reference: 10-13 s); test audio is whole.
    `augment` (e.g. RawBoost) is applied to training clips, and to validation
    clips only with `augment_valid` (the reference augments both; we don't by
    default, so validation EER measures clean audio). Bad manifest rows are
    reported and skipped.
    """
    if stage not in ("train", "valid", "test"):
        raise ValueError(f"stage must be train, valid or test, not {stage!r}")
    df, problems = read_manifest(csv_path, root=data_root, on_error="skip")
    for p in problems:
        logger.warning("skipping manifest row: %s", p)
    if len(df) == 0:
        raise ValueError(f"{csv_path}: no usable rows")
    has_segments = all(c in df.columns for c in SEGMENT_COLUMNS)
    data = {}
    for row in df.itertuples(index=False):
        start, stop = (row.Start, row.Stop) if has_segments else (0, -1)
        data[row.ID] = {
            "path": row.Path, "label": row.Label, "duration": float(row.Duration),
            "start": int(start), "stop": int(stop),
        }
    dataset = DynamicItemDataset(data)
    cropping = crop and stage in ("train", "valid")
    augmenting = augment is not None and (stage == "train" or (stage == "valid" and augment_valid))
    generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def audio_pipeline(path, start, stop):
        try:
            wav, sr = read_audio(path, start=start, stop=None if stop < 0 else stop)
        except AudioError as err:
            logger.warning("skipping unreadable audio: %s", err)
            return None
        wav = to_mono(wav)
        if cropping:
            wav = random_crop(wav, sr, generator=generator, max_s=max_seconds, min_s=min_seconds)
        wav = resample(wav, sr, TARGET_SR)
        if augmenting:
            wav = torch.as_tensor(augment(wav), dtype=torch.float32)
        return waveform_layer_norm(wav)

    dataset.add_dynamic_item(audio_pipeline, takes=["path", "start", "stop"], provides="wav")
    dataset.add_dynamic_item(lambda label: LABEL_TO_TARGET[label], takes="label", provides="target")
    dataset.set_output_keys(["id", "wav", "target", "duration"])
    return dataset


def batch_length(item, max_seconds=MAX_TRAIN_SECONDS):
    """Seconds a training item contributes to a dynamic batch (after cropping)."""
    return min(item["duration"], max_seconds)


def collate_skip_bad(examples):
    """PaddedBatch of the readable items; None when a whole batch was unreadable."""
    good = [ex for ex in examples if ex["wav"] is not None]
    if not good:
        return None
    return PaddedBatch(good)


def absolute_lengths(batch_wav):
    """SpeechBrain's relative lengths -> sample counts."""
    wavs, rel = batch_wav
    return torch.round(rel * wavs.shape[1]).long()
