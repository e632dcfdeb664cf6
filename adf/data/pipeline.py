"""Manifest -> SpeechBrain dataset -> padded batches, as the reference loader does.

One audio pipeline serves every stage; only the stage decides whether clips
are cropped and augmented (docs/data.md, How a row is loaded). Unreadable audio does
not stop a run: the item is reported once (file + problem) and dropped from
its batch by `collate_skip_bad`.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import math

import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.sampler import DistributedSamplerWrapper, DynamicBatchSampler

from adf.audio import (TARGET_SR, AudioError, bounded, crop_window, read_audio, resample, to_mono,
                       waveform_layer_norm)
from adf.data.manifest import REGIONS_COLUMN, SEGMENT_COLUMNS, read_manifest

logger = logging.getLogger(__name__)

LABEL_TO_TARGET = {"fake": 0, "real": 1}
# Training crops clips longer than this (seconds), so it also bounds the
# length a clip adds to a dynamic batch.
MAX_TRAIN_SECONDS = 13.0


class ItemRandomness:
    """Random draws (crop window, RawBoost) that depend only on (seed, epoch, item ID).

    A shared generator would make an item's crop depend on how many items were
    loaded before it: on the batch order, the DataLoader worker and, after a
    crash, on where training resumed. Seeding per item and epoch makes a resumed
    run see exactly the audio an uninterrupted run would have seen.
    `set_epoch` is called by SSLBrain at the start of every training epoch.
    """

    def __init__(self, seed):
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def item_seed(self, item_id, purpose):
        """A 63-bit seed for `purpose` ("crop", "augment") of this item in the current epoch."""
        key = f"{self.seed}/{self.epoch}/{purpose}/{item_id}".encode()
        digest = hashlib.blake2b(key, digest_size=8).digest()
        return int.from_bytes(digest, "little") >> 1


def load_dataset(csv_path, data_root, stage, augment=None, augment_valid=False,
                 crop=True, max_seconds=MAX_TRAIN_SECONDS, min_seconds=10.0, seed=None,
                 input_policy="whole", random_window=True, frame_layers=None):
    """A DynamicItemDataset over a manifest with items `id`, `wav`, `target`, `duration`.

    stage: "train", "valid" or "test". Train and valid clips longer than
    `max_seconds` are randomly cropped (reference: 10-13 s); test audio is whole.
    `augment(wav, rng=int_seed)` (e.g. RawBoost) is applied to training clips,
    and to validation clips only with `augment_valid` (the reference augments
    both; we don't by default, so validation EER measures clean audio). Bad
    manifest rows are reported and skipped.
    With a `seed`, crops and augmentation are drawn per item and epoch
    (`dataset.randomness`, an ItemRandomness); without one they are not reproducible.
    `input_policy` (adf.input_policy) cuts and scales the model input: "whole"
    (the crop above, then per-utterance layer norm) or a fixed-input policy
    ("first-64600": training items get a random window of that length, tiled
    when shorter, validation and test items the first one; no crop by
    duration, no normalisation; `random_window=False`: training items too get
    the first window, as SSL_Anti-spoofing trains).
    With `frame_layers` (the backbone CNN's [(channels, kernel, stride)]) items
    also get `frame_target`: 1 (real) / 0 (fake) per backbone frame of the
    model input, from the row's fake regions (docs/data.md, Fake regions),
    shifted by the training crop.
    """
    from adf.input_policy import get_policy

    policy = get_policy(input_policy)
    if frame_layers is not None and policy.fixed:
        raise ValueError(f"frame targets need the whole-utterance input policy, not {policy.name}")
    if stage not in ("train", "valid", "test"):
        raise ValueError(f"stage must be train, valid or test, not {stage!r}")
    df, problems = read_manifest(csv_path, root=data_root, on_error="skip")
    for p in problems:
        logger.warning("skipping manifest row: %s", p)
    if len(df) == 0:
        raise ValueError(f"{csv_path}: no usable rows (the manifest is empty, header-only or every row is bad)")
    has_segments = all(c in df.columns for c in SEGMENT_COLUMNS)
    data = {}
    for row in df.itertuples(index=False):
        start, stop = (row.Start, row.Stop) if has_segments else (0, -1)
        data[row.ID] = {
            "path": row.Path, "label": row.Label, "duration": float(row.Duration),
            "start": int(start), "stop": int(stop),
            "regions": getattr(row, REGIONS_COLUMN, "") if REGIONS_COLUMN in df.columns else "",
        }
    dataset = DynamicItemDataset(data)
    cropping = crop and stage in ("train", "valid") and not policy.fixed
    augmenting = augment is not None and (stage == "train" or (stage == "valid" and augment_valid))
    randomness = ItemRandomness(seed) if seed is not None else None

    def load(item_id, path, start, stop):
        """(model input, seconds cut from the start by the crop), or (None, 0) when unreadable."""
        try:
            wav, sr = read_audio(path, start=start, stop=None if stop < 0 else stop)
        except AudioError as err:
            logger.warning("skipping unreadable audio: %s", err)
            return None, 0.0
        wav = to_mono(bounded(wav))
        begin = 0
        if cropping:
            generator = None
            if randomness is not None:
                generator = torch.Generator().manual_seed(randomness.item_seed(item_id, "crop"))
            begin, length = crop_window(wav.shape[-1], sr, generator, max_s=max_seconds, min_s=min_seconds)
            wav = wav[..., begin : begin + length]
        return _model_input(item_id, resample(wav, sr, TARGET_SR)), begin / sr

    def _model_input(item_id, wav):
        if augmenting:
            rng = randomness.item_seed(item_id, "augment") if randomness is not None else None
            wav = torch.as_tensor(augment(wav, rng=rng), dtype=torch.float32)
        if not policy.fixed:
            return waveform_layer_norm(wav)
        if stage != "train" or not random_window:
            return policy.for_scoring(wav)
        generator = None
        if randomness is not None:
            generator = torch.Generator().manual_seed(randomness.item_seed(item_id, "window"))
        return policy.for_training(wav, generator)

    def audio_pipeline(item_id, path, start, stop):
        return load(item_id, path, start, stop)[0]

    def audio_and_frames(item_id, path, start, stop, label, regions):
        from adf.localisation.regions import frame_count, frame_targets, row_regions

        wav, offset = load(item_id, path, start, stop)
        yield wav
        if wav is None:
            yield None
            return
        fake = [(s - offset, e - offset) for s, e in row_regions(label, regions, math.inf)]
        yield torch.as_tensor(frame_targets(fake, frame_count(wav.shape[-1], frame_layers)))

    keys = ["id", "wav", "target", "duration"]
    if frame_layers is None:
        dataset.add_dynamic_item(audio_pipeline, takes=["id", "path", "start", "stop"], provides="wav")
    else:
        dataset.add_dynamic_item(audio_and_frames, takes=["id", "path", "start", "stop", "label", "regions"],
                                 provides=["wav", "frame_target"])
        keys.append("frame_target")
    dataset.add_dynamic_item(lambda label: LABEL_TO_TARGET[label], takes="label", provides="target")
    dataset.set_output_keys(keys)
    dataset.randomness = randomness
    return dataset


def batch_length(item, max_seconds=MAX_TRAIN_SECONDS):
    """Seconds a training item contributes to a dynamic batch (after cropping to `max_seconds`)."""
    return min(item["duration"], max_seconds)


def dynamic_batches(dataset, max_batch_seconds, num_buckets, seed, max_batch_size=None,
                    max_seconds=MAX_TRAIN_SECONDS):
    """Training batches bounded in memory: SpeechBrain's DynamicBatchSampler.

    Items are bucketed by (cropped) duration; a batch holds at most
    `max_batch_seconds` of audio *including padding* (every item of a bucket is
    at most the bucket's upper edge, and the bucket's batch size is
    max_batch_seconds // edge) and at most `max_batch_size` items. Shuffled
    deterministically from `seed` + epoch.
    """
    return DynamicBatchSampler(
        dataset,
        max_batch_length=max_batch_seconds,
        num_buckets=num_buckets,
        length_func=functools.partial(batch_length, max_seconds=max_seconds),
        shuffle=True,
        batch_ordering="random",
        max_batch_ex=max_batch_size,
        seed=seed,
    )


class DistributedBatchSampler(DistributedSamplerWrapper):
    """Each DDP rank's share of a batch sampler's batches (SpeechBrain's wrapper, fixed).

    Two fixes over `DistributedSamplerWrapper`: a rank whose share is a single
    batch gets that batch (the wrapper's itemgetter returned its items one by
    one), and the share is recomputed every epoch because DynamicBatchSampler
    re-buckets, so the number of batches can change. Every rank gets the same
    number of batches (the last ones repeat a few), so DDP never waits on a
    finished rank.
    """

    def __iter__(self):
        batches = list(self.sampler)
        self.num_samples = math.ceil(len(batches) / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        positions = super(DistributedSamplerWrapper, self).__iter__()  # DistributedSampler's
        return iter([batches[i] for i in positions])


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
