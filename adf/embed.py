"""`adf embed`: pooled utterance embeddings of audio files, folders or manifests.

    adf embed --ckpt model.safetensors -o emb.npy clips/ test.csv

Writes `emb.npy` (float32, one row per scored input: the model's pooled
embedding, the mean of the valid backbone frames, or of the windows' with
`--window`) and `emb.csv`, the id list: `adf detect`'s score CSV for the same
inputs (id, path, logits, prob_real, + label for manifests), row i of the CSV
being row i of the array. It is `adf detect` with `--embeddings`: the same
inputs, batching, precision, workers, windows, skipping of bad files and
resuming (a killed run, run again with the same `-o`, embeds only what is
missing). The pair feeds `adf drift` and tools/embedding_analysis.py.
"""
from __future__ import annotations

import os

PARTIAL = ".partial"


def add_arguments(parser):
    from adf.detect import add_arguments as detect_arguments

    detect_arguments(parser)
    for action in parser._actions:  # -o names the array here; the id list goes beside it
        if action.dest == "output":
            action.help = "embedding array to write (.npy); the id list/score CSV goes to the same name .csv"


def run(args):
    from adf.detect import run as detect_run

    if not args.output.endswith(".npy"):
        import sys

        print(f"adf embed: error: -o must name a .npy file, got {args.output}", file=sys.stderr)
        return 2
    args.embeddings = args.output
    args.output = args.output[:-4] + ".csv"
    return detect_run(args)


class EmbeddingStore:
    """Embeddings keyed by (path, id), built batch by batch so that a killed run keeps them.

    Finished batches go to `<npy>.partial/<n>.npz` (written atomically, with the
    keys beside the vectors); `finalize(keys)` writes `npy` in that order
    (atomically) and removes the side folder. Opening a store reads what an
    earlier run left: the side folder, and a finished `npy` whose row count
    matches its id CSV `ids_csv` (rows of the two are paired in order).
    """

    def __init__(self, npy, ids_csv, overwrite=False):
        import shutil

        import numpy as np

        from adf.scorefile import read_score_rows

        self.npy, self.folder = os.fspath(npy), os.fspath(npy) + PARTIAL
        self.vectors, self._count = {}, 0
        if overwrite:
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        if os.path.exists(self.npy) and os.path.exists(ids_csv):
            try:
                arr = np.load(self.npy, allow_pickle=False)
                rows = read_score_rows(ids_csv)
            except ValueError:
                arr, rows = None, []
            if arr is not None and arr.ndim == 2 and len(rows) == len(arr):
                self.vectors.update({(r["path"], r["id"]): v for r, v in zip(rows, arr)})
        for name in sorted(os.listdir(self.folder)) if os.path.isdir(self.folder) else []:
            try:
                with np.load(os.path.join(self.folder, name), allow_pickle=False) as chunk:
                    self.vectors.update(zip(zip(chunk["path"].tolist(), chunk["id"].tolist()), chunk["emb"]))
            except (ValueError, KeyError, OSError):  # a chunk cut off by a kill: its inputs are re-embedded
                continue
        self._count = len(os.listdir(self.folder)) if os.path.isdir(self.folder) else 0

    def __contains__(self, key):
        return key in self.vectors

    def append(self, keys, vectors):
        """Save one batch of (path, id) keys and their vectors; on disk when this returns."""
        import numpy as np

        from adf.atomic import atomic_path

        if not keys:
            return
        os.makedirs(self.folder, exist_ok=True)
        emb = np.stack(vectors).astype(np.float32)
        with atomic_path(os.path.join(self.folder, f"{self._count:08d}.npz")) as tmp:
            np.savez(tmp, emb=emb, path=np.array([k[0] for k in keys]), id=np.array([k[1] for k in keys]))
        self._count += 1
        self.vectors.update(zip(keys, emb))

    def finalize(self, keys):
        """Write the vectors of `keys`, in order, to the `.npy` (atomically)."""
        import numpy as np

        from adf.atomic import atomic_path

        with atomic_path(self.npy) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.stack([self.vectors[k] for k in keys]).astype(np.float32) if keys
                        else np.zeros((0, 0), np.float32))

    def remove_partial(self):
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)
