"""Multi-process (DDP) training on the CPU: torchrun, gloo, 2 ranks, tiny model, toy corpus."""
import json
import os
import subprocess
import sys

import pytest

from tests.synth import ROOT, tiny_train_argv, toy_corpus

REPO = str(ROOT)


def train_args(root, exp, *extra):
    return tiny_train_argv(root, exp, "--device", "cpu", "--max_batch_seconds", "3", "--num_buckets", "4",
                           "--optimizer_step_limit", "4", "--valid_step", "2", "--number_of_epochs", "1",
                           "--warmup_steps", "1", *extra)


def run_probe(record, args, nproc=None):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    launcher = [sys.executable]
    if nproc:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    cmd = launcher + [os.path.join(REPO, "tests", "train_probe.py"), str(record), *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


@pytest.mark.slow
def test_two_rank_gloo_training_stays_in_sync_and_only_rank0_writes(tmp_path):
    frames = toy_corpus(tmp_path, (24, 8, 4))
    exp = tmp_path / "exp"
    run_probe(tmp_path / "record", train_args(tmp_path, exp, "--distributed_backend", "gloo"), nproc=2)
    r0, r1 = (json.loads((tmp_path / "record" / f"rank{r}.json").read_text()) for r in (0, 1))

    # Training ran, and both ranks end with bit-identical weights (gradients were all-reduced).
    assert r0["weights_start"] == r1["weights_start"]
    assert r0["weights_end"] != r0["weights_start"]
    assert r0["weights_end"] == r1["weights_end"]

    # Each rank trained on its own share of the batches: same number of steps, different clips.
    steps0, steps1 = [b[0] for b in r0["batches"]], [b[0] for b in r1["batches"]]
    assert steps0 == steps1 == [0, 1, 2, 3]
    ids0 = {i for _, ids, _ in r0["batches"] for i in ids}
    ids1 = {i for _, ids, _ in r1["batches"] for i in ids}
    assert ids0 and ids1 and ids0.isdisjoint(ids1)

    # Validation (mid-epoch at steps 2 and 4, then end of epoch): each rank scored half of
    # the validation set, the EER is computed on the gathered whole set and is identical.
    n_valid = len(frames["valid"])
    assert r0["valid"] == r1["valid"]
    assert [s for s, _, _ in r0["valid"]] == [2, 4, 4]
    assert all(n == n_valid for _, _, n in r0["valid"])

    # Only rank 0 wrote into the experiment folder; rank 1 wrote nothing at all.
    assert r1["writes"] == []
    written = {os.path.relpath(p, exp) for _, p in r0["writes"]}  # the probe sees rank 0's writes
    assert "train_log.txt" in written
    assert any(p.startswith("save/.tmp-") and p.endswith("-best_model.safetensors") for p in written)
    assert any(p.startswith("tensorboard/events") for p in written)
    assert any(p.startswith("save/CKPT") and p.endswith("/model.ckpt") for p in written)
    # Each validation was logged exactly once (one process logged).
    log = (exp / "train_log.txt").read_text().splitlines()
    assert len(log) == 3 and all("valid EER" in line for line in log)
    ckpts = [p for p in os.listdir(exp / "save") if p.startswith("CKPT")]
    assert ckpts  # rank 0 saved the SpeechBrain checkpoints


@pytest.mark.slow
def test_compiled_layers_under_ddp_stay_in_sync(tmp_path):
    """compile_layers composes with DDP: each rank compiles its layers, gradients are
    still all-reduced, and both ranks end with the same (changed) weights."""
    toy_corpus(tmp_path, (24, 8, 4))
    exp = tmp_path / "exp"
    run_probe(tmp_path / "record",
              train_args(tmp_path, exp, "--distributed_backend", "gloo", "--compile_layers", "true"), nproc=2)
    r0, r1 = (json.loads((tmp_path / "record" / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["weights_start"] == r1["weights_start"] != r0["weights_end"]
    assert r0["weights_end"] == r1["weights_end"]
    assert [b[0] for b in r0["batches"]] == [b[0] for b in r1["batches"]] == [0, 1, 2, 3]


@pytest.mark.slow
def test_two_nodes_one_rank_each_train_in_sync_and_only_global_rank0_writes(tmp_path):
    """The documented multi-node launch, two 'nodes' on this machine: torchrun
    --nnodes=2 --node_rank=0/1 with c10d rendezvous. The second node's process is
    LOCAL_RANK 0 but global rank 1: it must train in sync and write nothing."""
    import socket

    toy_corpus(tmp_path, (24, 8, 4))
    exp = tmp_path / "exp"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    args = train_args(tmp_path, exp, "--distributed_backend", "gloo")
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
         f"--node_rank={node}", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}",
         "--rdzv_id=adf-test", os.path.join(REPO, "tests", "train_probe.py"), str(tmp_path / "record"), *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for node in (0, 1)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert all(node.returncode == 0 for node in nodes), "\n".join(o[-3000:] for o in outputs)
    r0, r1 = (json.loads((tmp_path / "record" / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["weights_start"] == r1["weights_start"] != r0["weights_end"] == r1["weights_end"]
    assert r1["writes"] == [] and r0["writes"]
    assert len((exp / "train_log.txt").read_text().strip().splitlines()) == 3  # logged once per validation
