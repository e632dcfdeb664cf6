"""Memory and scaling options, in-process: gradient accumulation, activation checkpointing,
frozen CNN, bounded dynamic batches, DDP batch sharding and per-item crop seeds."""
import functools

import pandas as pd
import pytest
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.nnet.schedulers import WarmAndExpDecayLRSchedule
from speechbrain.utils.epoch_loop import EpochCounter

from adf.brain import SSLBrain
from adf.data.manifest import COLUMNS
from adf.data.pipeline import DistributedBatchSampler, dynamic_batches, load_dataset
from adf.models.classifier import SSLClassifier
from tests.synth import manifest_row, toy_corpus, write_tone


def toy_batches(n, seed=0):
    """n items of different lengths (0.3-0.5 s at 16 kHz), alternating labels."""
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        length = 4800 + 800 * i
        items.append({"id": f"x{i}", "wav": torch.randn(length, generator=g), "target": i % 2})
    return items


def train_one_step(model, batches, accumulation, opt_class):
    """Run SSLBrain over `batches` (one epoch) and return the trained model."""
    hparams = {"lr_scheduler": WarmAndExpDecayLRSchedule(lr=0.1, n_warmup_steps=0, total_steps=100),
               "valid_step": 0, "grad_accumulation_factor": accumulation, "max_grad_norm": 1e9}
    brain = SSLBrain(modules={"model": model}, opt_class=opt_class, hparams=hparams,
                     run_opts={"device": "cpu", "noprogressbar": True})
    loader = torch.utils.data.DataLoader(batches, batch_size=None, collate_fn=lambda b: b)
    brain.fit(EpochCounter(1), loader)
    assert brain.optimizer_step == 1
    return model


def test_two_accumulated_half_batches_equal_one_full_batch_step():
    torch.manual_seed(0)
    base = SSLClassifier("tiny")
    items = toy_batches(4)
    sgd = functools.partial(torch.optim.SGD, lr=0.1)  # unlike Adam, sensitive to the gradient's scale
    full = SSLClassifier("tiny")
    full.load_state_dict(base.state_dict())
    halves = SSLClassifier("tiny")
    halves.load_state_dict(base.state_dict())
    train_one_step(full, [PaddedBatch(items)], 1, sgd)
    train_one_step(halves, [PaddedBatch(items[:2]), PaddedBatch(items[2:])], 2, sgd)
    moved = 0
    for (name, a), b, c in zip(full.state_dict().items(), halves.state_dict().values(),
                               base.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), name
        moved += not torch.equal(a, c)
    assert moved > 10  # the step did change the weights


def _loss_and_grads(model, wav, lengths, targets):
    torch.manual_seed(123)  # same dropout masks in both models
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        loss = torch.nn.functional.cross_entropy(model(wav, lengths), targets)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}, sum(saved)


def test_activation_checkpointing_gives_the_same_gradients_with_fewer_saved_activations():
    kwargs = dict(encoder_dropout=0.1, encoder_attention_dropout=0.1)
    plain = SSLClassifier("tiny", **kwargs)
    ckpt = SSLClassifier("tiny", activation_checkpointing=True, **kwargs)
    ckpt.load_state_dict(plain.state_dict())
    assert list(ckpt.state_dict()) == list(plain.state_dict())  # checkpoints stay compatible
    batch = PaddedBatch(toy_batches(3))
    wav, rel = batch.wav
    lengths = torch.round(rel * wav.shape[1]).long()
    targets = batch.target
    loss_a, grads_a, saved_a = _loss_and_grads(plain.train(), wav, lengths, targets)
    loss_b, grads_b, saved_b = _loss_and_grads(ckpt.train(), wav, lengths, targets)
    assert loss_a == pytest.approx(loss_b, abs=1e-6)
    for name, g in grads_a.items():
        assert torch.allclose(g, grads_b[name], atol=1e-6, rtol=1e-5), name
    assert saved_b < saved_a  # the transformer layers' activations were not kept
    with torch.no_grad():  # inference is unaffected
        assert torch.allclose(plain.eval()(wav, lengths), ckpt.eval()(wav, lengths), atol=1e-6)


def test_frozen_cnn_keeps_its_weights_through_an_adamw_step():
    model = SSLClassifier("tiny", freeze_cnn=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    adamw = functools.partial(torch.optim.AdamW, lr=0.01, weight_decay=0.01)
    train_one_step(model, [PaddedBatch(toy_batches(2))], 1, adamw)
    for name, p in model.named_parameters():
        changed = not torch.equal(p.detach(), before[name])
        assert changed != name.startswith("backbone.feature_extractor."), name


def test_dynamic_batches_respect_seconds_and_size_caps(tmp_path):
    frames = toy_corpus(tmp_path, (24, 2, 2))
    ds = load_dataset(tmp_path / "data/train.csv", tmp_path, "train", seed=0)
    durations = dict(zip(frames["train"].ID, frames["train"].Duration))
    for size_cap in (None, 2):
        sampler = dynamic_batches(ds, max_batch_seconds=4, num_buckets=4, seed=0, max_batch_size=size_cap)
        batches = list(sampler)
        assert sorted(i for b in batches for i in b) == list(range(24))  # every clip once
        for b in batches:
            secs = [durations[ds.data_ids[i]] for i in b]
            assert len(b) == 1 or len(b) * max(secs) <= 4.0  # padded batch within the cap
            assert size_cap is None or len(b) <= size_cap
    assert max(len(b) for b in batches) == 2


def test_distributed_batch_sampler_shards_batches_even_with_one_batch_per_rank():
    batches = [[0, 1], [2, 3], [4]]
    for n_batches in (2, 3):
        shares = [list(DistributedBatchSampler(batches[:n_batches], num_replicas=2, rank=r, shuffle=False))
                  for r in (0, 1)]
        assert all(isinstance(b, list) for s in shares for b in s)  # batches, not loose items
        assert len(shares[0]) == len(shares[1])  # ranks step in lockstep
        assert {tuple(b) for s in shares for b in s} == {tuple(b) for b in batches[:n_batches]}


def test_random_crops_depend_on_item_and_epoch_not_on_loading_order(tmp_path):
    rows = []
    for i in range(3):
        write_tone(tmp_path / f"{i}.wav", 3.0, seed=i)
        rows.append(manifest_row(f"C-{i}", "real", f"$ROOT/{i}.wav", 3.0))
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / "m.csv", index=False)

    def crops(order, epoch):
        ds = load_dataset(tmp_path / "m.csv", tmp_path, "train", seed=7, max_seconds=2.0, min_seconds=1.0)
        ds.randomness.set_epoch(epoch)
        return {ds[i]["id"]: ds[i]["wav"] for i in order}

    forward, backward = crops([0, 1, 2], 1), crops([2, 1, 0], 1)
    assert all(torch.equal(forward[k], backward[k]) for k in forward)
    other_epoch = crops([0, 1, 2], 2)
    assert any(not torch.equal(forward[k], other_epoch[k]) for k in forward)


def test_command_line_run_options_reach_the_hparams(tmp_path):
    """--optimizer_step_limit also sets the schedule's length; --ckpt_interval_steps replaces
    the hparams' ckpt_interval_minutes (SpeechBrain refuses both)."""
    import speechbrain as sb
    from hyperpyyaml import load_hyperpyyaml

    from adf.hparams import read_chain
    from adf.train import _share_run_options

    tiny = open("recipes/posttrain/hparams/tiny.yaml", encoding="utf-8").read()
    assert "ckpt_interval_minutes: 0\n" in tiny
    path = tmp_path / "h.yaml"
    path.write_text(tiny.replace("ckpt_interval_minutes: 0\n", "ckpt_interval_minutes: 30\n"))
    _, run_opts, overrides = sb.parse_arguments(
        [str(path), "--optimizer_step_limit", "7", "--ckpt_interval_steps", "5", "--output_folder", str(tmp_path)])
    run_opts, overrides = _share_run_options(read_chain(path).keys(), run_opts, overrides)
    assert run_opts["optimizer_step_limit"] == 7
    hparams = load_hyperpyyaml(path.read_text(), overrides)
    assert hparams["optimizer_step_limit"] == 7 and hparams["lr_scheduler"].decay_steps == 7 - hparams["warmup_steps"]
    assert hparams["ckpt_interval_minutes"] == 0 and hparams["ckpt_interval_steps"] == 5
    brain = SSLBrain(modules={"model": hparams["model"]}, hparams=hparams, run_opts=run_opts)
    assert (brain.ckpt_interval_steps, brain.ckpt_interval_minutes, brain.optimizer_step_limit) == (5, 0, 7)
