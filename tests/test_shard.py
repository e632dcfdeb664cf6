"""`torchrun -m adf detect`: ranks score shares of the inputs, rank 0 merges the output of one process."""
import glob
import os
import random
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from adf.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIPS = sorted(glob.glob(os.path.join(REPO, "egs_data", "audio", "test", "*.flac")))[::4]  # 28 clips, 1.7-3 s


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    if len(CLIPS) < 20:
        pytest.skip("egs_data clips not present")
    bad = tmp_path_factory.mktemp("bad") / "empty.wav"
    bad.write_bytes(b"")
    return CLIPS + [str(bad)]


def test_a_subset_of_whole_batches_is_planned_into_the_same_batches():
    """The property the sharding rests on: plan_batches on the union of some of its
    batches gives back exactly those batches (random lengths, sizes and subsets)."""
    from adf.inference import plan_batches

    rng = random.Random(0)
    for _ in range(300):
        lengths = [rng.choice([rng.randint(100, 2000), 1000]) for _ in range(rng.randint(1, 60))]  # with ties
        size = rng.randint(1, 9)
        batches = plan_batches(lengths, size)
        chosen = [b for b in batches if rng.random() < 0.5]
        subset = sorted(i for b in chosen for i in b)  # the inputs in their given order
        replanned = plan_batches([lengths[i] for i in subset], size)
        assert [[subset[j] for j in b] for b in replanned] == chosen


def _scores(model, items):
    from adf.inference import score_items

    return {s.item.id: (s.logit_fake, s.logit_real)
            for s in score_items(model, items, batch_size=4, precision="fp32") if s.ok}


def test_owned_shares_score_the_same_bits_as_one_process(ckpt, inputs):
    from adf.inference import Item, load_detector
    from adf.shard import owners

    model, _ = load_detector(ckpt, precision="fp32")
    items = [Item(str(n), path) for n, path in enumerate(inputs[-13:])]  # 12 clips and the bad file
    alone = _scores(model, items)
    for size in (2, 3):
        owner = owners(model, items, size, batch_size=4)
        assert owner[-1] == 0  # the unreadable file: reported by rank 0 only
        counts = [owner.count(r) for r in range(size)]
        assert min(counts) >= len(items) // size - 4  # balanced to within a batch
        shares = {}
        for rank in range(size):
            shares.update(_scores(model, [i for i, o in zip(items, owner) if o == rank]))
        assert shares == alone  # bit-identical floats, same items


def adf(*argv, ranks=None):
    """`python -m adf ARGV`, or under torchrun with `ranks` processes; one thread each
    (the thread count changes how BLAS splits sums, hence the last bits)."""
    environment = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"] if ranks else []
    cmd = [sys.executable, *launcher, "-m", "adf", *map(str, argv)]
    proc = subprocess.run(cmd, cwd=REPO, env=environment, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_two_ranks_merge_the_single_process_output_and_resume_a_killed_rank(ckpt, inputs, tmp_path):
    common = ["--ckpt", ckpt, "--precision", "fp32", "--workers", "0", "--batch-size", "4", *inputs]
    single = tmp_path / "single.csv"
    adf("detect", "-o", single, *common)
    sharded = tmp_path / "sharded.csv"
    proc = adf("detect", "-o", sharded, *common, ranks=2)
    assert f"merged 2 part(s) -> {sharded}" in proc.stdout
    assert sharded.read_bytes() == single.read_bytes()  # same rows, order and values
    assert (tmp_path / "sharded.csv.run.json").read_text() == (tmp_path / "single.csv.run.json").read_text()
    assert proc.stderr.count("empty.wav") == 1  # the bad file reported once, by one rank
    parts = tmp_path / "sharded.csv.parts"
    rows = [pd.read_csv(parts / f"rank{r}-of-2.csv") for r in (0, 1)]
    assert len(rows[0]) + len(rows[1]) == len(CLIPS) and min(len(r) for r in rows) >= 8

    # Rank 1 is killed mid-way: its part has two finished rows in .partial and a cut-off line.
    part1 = parts / "rank1-of-2.csv"
    lines = part1.read_text().splitlines(keepends=True)
    part1.unlink()
    (parts / "rank1-of-2.csv.partial").write_text("".join(lines[:3]) + lines[3][:20])
    sharded.unlink()
    proc = adf("detect", "-o", sharded, *common, ranks=2)
    assert f"resuming: 2 input(s) already scored in {part1}" in proc.stderr
    assert f"scored {len(rows[1]) - 2} input(s) (2 already scored)" in proc.stdout
    assert f"scored 0 input(s) ({len(rows[0])} already scored)" in proc.stdout  # rank 0 had finished
    # The same rows in the same order; the kept rows are the killed run's, the rescored ones
    # were scored in other batches than in one process (as any resumed run) and may differ in
    # their last bits.
    merged, want = pd.read_csv(sharded, dtype=str), pd.read_csv(single, dtype=str)
    assert merged[["id", "path"]].equals(want[["id", "path"]])
    kept = merged.set_index("id").loc[rows[1]["id"].astype(str)[:2]]
    assert kept.equals(want.set_index("id").loc[kept.index])
    logits = ["logit_fake", "logit_real", "prob_real"]
    assert np.abs(merged[logits].astype(float).to_numpy() - want[logits].astype(float).to_numpy()).max() < 1e-5


@pytest.mark.slow
def test_two_ranks_with_windows_segments_and_embeddings(ckpt, inputs, tmp_path):
    common = ["--ckpt", ckpt, "--precision", "fp32", "--workers", "0", "--batch-size", "4", "--window", "1",
              *inputs[:12]]
    assert main(["detect", "-o", str(tmp_path / "one.csv"), "--segments", str(tmp_path / "one_seg.csv"),
                 "--embeddings", str(tmp_path / "one.npy"), *common]) == 0
    adf("detect", "-o", tmp_path / "two.csv", "--segments", tmp_path / "two_seg.csv",
        "--embeddings", tmp_path / "two.npy", *common, ranks=2)
    for name, keys in (("", ["id", "path"]), ("_seg", ["id", "path", "start", "end"])):
        one, two = pd.read_csv(tmp_path / f"one{name}.csv"), pd.read_csv(tmp_path / f"two{name}.csv")
        assert list(two.columns) == list(one.columns) and two[keys].equals(one[keys])
        assert np.abs(two[["logit_fake", "logit_real"]].to_numpy()
                      - one[["logit_fake", "logit_real"]].to_numpy()).max() < 1e-5
    one, two = np.load(tmp_path / "one.npy"), np.load(tmp_path / "two.npy")
    assert one.shape == two.shape == (12, 128) and np.abs(one - two).max() < 1e-5
