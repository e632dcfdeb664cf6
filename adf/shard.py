"""`adf detect` (and `adf embed`) on several processes, GPUs or nodes under torchrun.

    torchrun --standalone --nproc_per_node 8 -m adf detect --ckpt model.ckpt -o scores.csv data/

Every process runs the same command; torchrun's environment (RANK,
WORLD_SIZE, LOCAL_RANK) makes it one rank of a sharded run:

* **Sharding**: every rank collects the same items in the same order (the
  inputs as given, folders walked sorted, manifests row by row:
  adf.detect.collect_items), reads their headers and plans the batches one
  process would score (adf.inference), then scores whole batches of that
  plan (`owners`): each input meets the same batch and padding as in a
  single-process run, so its logits are the same bits, and the merged output
  equals a single-process run's byte for byte (same device and precision).
  With `--window`, whole items are dealt instead (their windows share batches
  with other items'): the same rows, values equal up to rounding (~1e-7).
  Without `--device`, rank r uses GPU `LOCAL_RANK mod (GPUs on its node)`.
* **Parts**: rank r writes `OUT.parts/rank<r>-of-<N>.csv` (and `.segments.csv`,
  `.npy` with --segments / embeddings) through adf detect's own resumable
  output (`.partial` rows as they come, `.run.json` record, lock), so a killed
  rank loses nothing: running the same command again (same N) resumes every
  part where it stopped, and refuses parts of another checkpoint or options.
* **Merge**: when every rank has finished (a gloo all-gather of the ranks'
  exit statuses), rank 0 merges the parts into `OUT` (atomically, rows in
  input order, with OUT.run.json): the same rows and values as one process
  would write. The parts stay for resuming; delete `OUT.parts/` when done.
  Several nodes need `OUT` on a file system all of them see.

The process group only carries the exit statuses (gloo, on the CPU), so it
works on GPU and CPU machines alike; it waits up to ADF_SHARD_TIMEOUT
seconds (default 7 days) for the slowest rank.
"""
from __future__ import annotations

import os
import sys

PARTS = ".parts"
DEFAULT_TIMEOUT_S = 7 * 24 * 3600


def world():
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside it."""
    try:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), \
            int(os.environ.get("LOCAL_RANK", 0))
    except ValueError:
        raise ValueError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (torchrun sets them)") from None


def sharded(args):
    """Whether this `adf detect` process is one rank of several (and not already set up as one)."""
    return world()[1] > 1 and getattr(args, "shard", None) is None


def part_paths(output, rank, size):
    """{"output", "segments", "embeddings"} part paths of rank `rank` of `size` for final `output`."""
    from adf.atomic import side_path

    stem = os.path.join(side_path(output, PARTS), f"rank{rank}-of-{size}")
    return {"output": stem + ".csv", "segments": stem + ".segments.csv", "embeddings": stem + ".npy"}


def owners(model, items, size, batch_size, window=None, hop=None, limits=None, workers=0):
    """The rank (of `size`) that scores each of `items`: [rank per item].

    Every rank reads the items' headers and computes the plan of one process
    scoring them all (adf.inference: model inputs, then length-sorted batches).
    Whole-utterance scoring deals whole batches of it, so each input is scored
    in the same batch, with the same padding, as by one process: the same bits.
    (A rank given whole batches re-plans exactly those: plan_batches closes a
    batch at `batch_size` or when the next input would add too much padding,
    and the next input of a subset is never longer than the one it replaces.)
    With windows, an item's windows fill several batches shared with other
    items, so items are dealt instead (all windows of an item on one rank);
    their batches differ from one process's, and logits can differ in the last
    bits (about 1e-7). Units go, longest first, to the rank with the least
    padded audio so far (ties: the lowest rank). Items that cannot be scored go
    to rank 0, which is reported once and which also holds the first batch."""
    from adf.inference import plan_batches, plan_pieces

    policy, plan, bad = plan_pieces(model, items, window, hop, limits, workers)
    pieces = plan.pieces
    position = {id(item): n for n, item in enumerate(items)}
    owner = [None] * len(items)
    for score in bad:
        owner[position[id(score.item)]] = 0
    lengths = [policy.scored_length(piece.length_16k) for piece in pieces]
    if window is None:  # one piece per item: a unit is a batch
        units = [([pieces[i].index for i in batch], len(batch) * lengths[batch[0]])
                 for batch in plan_batches(lengths, batch_size)]
    else:
        cost = {}
        for piece, length in zip(pieces, lengths):
            cost[piece.index] = cost.get(piece.index, 0) + length
        units = sorted((([index], c) for index, c in cost.items()), key=lambda u: -u[1])
    load = [0] * size
    for members, cost in units:
        rank = min(range(size), key=lambda r: (load[r], r))
        load[rank] += cost
        for index in members:
            owner[index] = rank
    return owner


def local_todo(args, model, items, todo):
    """This rank's share of `todo` (all of `todo` outside a sharded run): the items
    that `owners` gives it among all `items`, so the share does not depend on how
    far each rank got before a restart. Remembers the order of all items."""
    shard = getattr(args, "shard", None)
    if shard is None:
        return todo
    from adf.limits import AudioLimits

    shard["order"] = {(item.path, item.id): n for n, item in enumerate(items)}
    limits = AudioLimits(args.min_rate, args.max_rate, args.max_seconds)
    owner = owners(model, items, shard["size"], args.batch_size, args.window, args.hop, limits, args.workers)
    mine = {(item.path, item.id) for item, rank in zip(items, owner) if rank == shard["rank"]}
    return [item for item in todo if (item.path, item.id) in mine]


def run_sharded(args, run_one):
    """Run `run_one(args)` (adf.detect.run) on this rank's part, then merge on rank 0."""
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    rank, size, local_rank = world()
    final = {"output": args.output, "segments": args.segments, "embeddings": getattr(args, "embeddings", None)}
    parts = part_paths(args.output, rank, size)
    args.shard = {"rank": rank, "size": size, "order": None}
    args.output = parts["output"]
    args.segments = parts["segments"] if final["segments"] else None
    if final["embeddings"]:
        args.embeddings = parts["embeddings"]
    if args.device is None and torch.cuda.is_available():
        args.device = f"cuda:{local_rank % torch.cuda.device_count()}"
    timeout = float(os.environ.get("ADF_SHARD_TIMEOUT", DEFAULT_TIMEOUT_S))
    joined = not dist.is_initialized()
    if joined:
        dist.init_process_group("gloo", timeout=timedelta(seconds=timeout))
    try:
        code = run_one(args)
        codes = [None] * size
        dist.all_gather_object(codes, code)
        if any(c != 0 for c in codes):
            failed = [r for r, c in enumerate(codes) if c != 0]
            if rank == 0:
                print(f"adf detect: rank(s) {', '.join(map(str, failed))} of {size} did not finish; "
                      f"{final['output']} not merged (run the same command again to resume)", file=sys.stderr)
            return code or 1
        if rank != 0:
            return 0
        try:
            rows = merge(final, size, args.shard["order"], overwrite=args.overwrite)
        except (OSError, ValueError) as err:
            print(f"adf detect: error: cannot merge the parts into {final['output']}: {err}", file=sys.stderr)
            return 2
        print(f"adf detect: merged {size} part(s) -> {final['output']} ({rows} rows; parts kept in "
              f"{os.path.dirname(parts['output'])} for resuming)")
        return 0
    finally:
        if joined:
            dist.destroy_process_group()


def merge(final, size, order, overwrite=False):
    """Write the final outputs (`final`: {"output", "segments", "embeddings"} paths or None)
    from the `size` finished parts, rows in `order` ({(path, id): position}); returns
    the row count. An OUT of another run is refused unless `overwrite`."""
    import json

    from adf.atomic import ExclusiveLock, side_path
    from adf.scorefile import read_score_rows
    from adf.run_record import check_resumable, read_record, write_record

    key = lambda row: (row["path"], row["id"])  # noqa: E731
    position = lambda row: order.get(key(row), len(order))  # noqa: E731
    parts = [part_paths(final["output"], r, size) for r in range(size)]
    records = [read_record(p["output"]) for p in parts]
    for p, record in zip(parts, records):
        if record is None or not os.path.exists(p["output"]):
            raise ValueError(f"part {p['output']} is missing or unfinished (with several nodes, -o must be "
                             "on a file system every node sees)")
    if any(json.dumps(r, sort_keys=True) != json.dumps(records[0], sort_keys=True) for r in records):
        raise ValueError("the parts were produced by different checkpoints or options")
    lock = ExclusiveLock(final["output"])
    try:
        # an existing OUT of another run is never replaced silently (as adf detect refuses it)
        if not overwrite:
            check_resumable(final["output"], side_path(final["output"], ".partial"), records[0])
        per_part = [read_score_rows(p["output"]) for p in parts]
        rows = sorted((row for part in per_part for row in part), key=position)
        if final["embeddings"]:
            _merge_embeddings(final["embeddings"], [p["embeddings"] for p in parts], per_part,
                              [key(r) for r in rows])
        if final["segments"]:
            windows = [w for p in parts for w in read_score_rows(p["segments"])]
            windows.sort(key=lambda w: (position(w), float(w["start"])))
            _write_csv(final["segments"], _columns(p["segments"] for p in parts), windows)
            write_record(final["segments"], records[0])
        write_record(final["output"], records[0])
        _write_csv(final["output"], _columns(p["output"] for p in parts), rows)
    finally:
        lock.release()
    return len(rows)


def _columns(paths):
    """The columns of the parts' CSVs in order of appearance (each part has the score
    columns first; `label` is there when any item of that part has one)."""
    import csv

    columns = {}
    for path in paths:
        with open(path, encoding="utf-8", newline="") as fh:
            columns.update(dict.fromkeys(next(csv.reader(fh), [])))
    return list(columns)


def _write_csv(path, columns, rows):
    """A score CSV as adf.inference.ResumableCSV writes it (same quoting and line ends)."""
    import csv

    from adf.atomic import atomic_open

    with atomic_open(path, newline="") as fh:
        writer = csv.DictWriter(fh, columns, lineterminator="\n", restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _merge_embeddings(npy, part_files, part_rows, keys):
    """The parts' embedding arrays (rows in their part's row order) as one array in `keys` order."""
    import numpy as np

    from adf.atomic import atomic_path

    vectors = {}
    for path, rows in zip(part_files, part_rows):
        array = np.load(path, allow_pickle=False)
        if rows and len(array) != len(rows):
            raise ValueError(f"{path} holds {len(array)} embeddings for {len(rows)} rows")
        vectors.update(zip([(r["path"], r["id"]) for r in rows], array))
    with atomic_path(npy) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.stack([vectors[k] for k in keys]).astype(np.float32) if keys
                    else np.zeros((0, 0), np.float32))
