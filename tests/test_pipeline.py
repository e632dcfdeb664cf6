import pandas as pd
import torch

from adf.audio import load_for_model
from adf.data.manifest import COLUMNS
from adf.data.pipeline import absolute_lengths, collate_skip_bad, load_dataset
from tests.synth import manifest_row, toy_corpus, write_tone


def test_test_items_are_whole_16k_layer_normed(tmp_path):
    toy_corpus(tmp_path, (2, 2, 4))
    ds = load_dataset(tmp_path / "data/test.csv", tmp_path, "test")
    df = pd.read_csv(tmp_path / "data/test.csv")
    for i, row in df.iterrows():
        item = ds[i]
        path = row.Path.replace("$ROOT", str(tmp_path))
        assert torch.allclose(item["wav"], load_for_model(path))
        assert item["target"] == (1 if row.Label == "real" else 0)


def test_training_crops_long_clips_and_augments(tmp_path):
    write_tone(tmp_path / "long.wav", 20.0, 8000)
    rows = [manifest_row("L-1", "real", "$ROOT/long.wav", 20.0, 8000)]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / "m.csv", index=False)
    calls = []

    def augment(wav, rng):
        calls.append(len(wav))
        return wav * 2 + 1

    train = load_dataset(tmp_path / "m.csv", tmp_path, "train", augment=augment, seed=0)
    n = len(train[0]["wav"])
    assert 10 * 16000 - 2 <= n <= 13 * 16000 + 2 and calls == [n]
    valid = load_dataset(tmp_path / "m.csv", tmp_path, "valid", augment=augment, seed=0)
    assert len(valid[0]["wav"]) <= 13 * 16000 + 2 and len(calls) == 1  # not augmented by default
    test = load_dataset(tmp_path / "m.csv", tmp_path, "test", augment=augment)
    assert len(test[0]["wav"]) == 20 * 16000 and len(calls) == 1


def test_segment_rows_read_only_their_samples(tmp_path):
    p = write_tone(tmp_path / "a.wav", 3.0, 16000)
    rows = [dict(manifest_row("S-1", "fake", "$ROOT/a.wav", 1.0), Start=16000, Stop=32000)]
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    item = load_dataset(tmp_path / "m.csv", tmp_path, "test")[0]
    assert torch.allclose(item["wav"], load_for_model(p, start=16000, stop=32000))


def test_unreadable_audio_and_bad_rows_are_reported_and_skipped(tmp_path, caplog):
    write_tone(tmp_path / "ok.wav", 0.5)
    (tmp_path / "broken.wav").write_bytes(b"not audio at all")
    rows = [manifest_row("B-1", "real", "$ROOT/ok.wav", 0.5), manifest_row("B-2", "fake", "$ROOT/broken.wav", 0.5),
            manifest_row("B-3", "maybe", "$ROOT/ok.wav", 0.5)]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / "m.csv", index=False)
    ds = load_dataset(tmp_path / "m.csv", tmp_path, "valid")
    assert len(ds) == 2 and "row 4, column Label" in caplog.text
    batch = collate_skip_bad([ds[0], ds[1]])
    assert "broken.wav" in caplog.text and "cannot decode" in caplog.text
    assert batch.id == ["B-1"]
    assert collate_skip_bad([ds[1]]) is None


def test_padded_batch_lengths_are_exact_sample_counts(tmp_path):
    toy_corpus(tmp_path, (2, 2, 6))
    ds = load_dataset(tmp_path / "data/test.csv", tmp_path, "test")
    batch = collate_skip_bad([ds[i] for i in range(6)])
    lengths = absolute_lengths(batch.wav)
    assert lengths.tolist() == [len(ds[i]["wav"]) for i in range(6)]
    wavs = batch.wav.data
    for i, n in enumerate(lengths):
        assert torch.all(wavs[i, n:] == 0)
