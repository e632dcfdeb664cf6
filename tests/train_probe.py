"""Run `adf.train.main` and record what the scaling tests check, one JSON per rank.

Usage: python tests/train_probe.py RECORD_DIR hparams.yaml [--key value ...]
(also under torchrun). Writes RECORD_DIR/rank<R>.json with
  batches       [[optimizer_step_before, [ids...], audio_digest], ...] every training batch
  valid         [[optimizer_step, EER, n_items], ...] every validation
  weights_start / weights_end   sha256 of the model's parameters and buffers
  writes        files this process created, wrote, renamed or deleted inside
                the experiment folder (from Python's audit hooks)
The record goes outside the experiment folder, so it is not one of the writes.
Environment: ADF_PROBE_BATCH_SLEEP=<seconds> slows every training batch down,
so a test can kill the run mid-epoch.
"""
import hashlib
import json
import os
import sys
import time

import torch


def weights_digest(model):
    model = getattr(model, "module", model)
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def watch_writes(folder, writes):
    """Record file-system changes under `folder` made by this process."""
    folder = os.path.abspath(folder)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def inside(path):
        try:
            return os.path.abspath(os.fsdecode(path)).startswith(folder)
        except TypeError:  # a file descriptor
            return False

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & write_flags)
            if writing and inside(path):
                writes.append(["open", os.fsdecode(path)])
        elif event == "os.mkdir":  # makedirs(exist_ok=True) of an existing folder changes nothing
            if inside(args[0]) and not os.path.isdir(args[0]):
                writes.append([event, os.fsdecode(args[0])])
        elif event in ("os.remove", "os.rmdir", "os.rename", "os.replace", "shutil.rmtree",
                       "os.truncate", "os.symlink"):
            if args and inside(args[0]):
                writes.append([event, os.fsdecode(args[0])])

    sys.addaudithook(hook)

    # torch.save and safetensors write from C++/Rust, which raises no audit event.
    import safetensors.torch

    def recording(kind, save):
        def wrapper(obj, path, *args, **kwargs):
            if isinstance(path, (str, os.PathLike)) and inside(path):
                writes.append([kind, os.fspath(path)])
            return save(obj, path, *args, **kwargs)
        return wrapper

    torch.save = recording("torch.save", torch.save)
    safetensors.torch.save_file = recording("safetensors", safetensors.torch.save_file)


def main():
    record_dir, argv = sys.argv[1], sys.argv[2:]
    from adf.brain import SSLBrain
    from adf.train import main as train_main

    rank = int(os.environ.get("RANK", 0))
    rec = {"batches": [], "valid": [], "writes": []}
    exp = argv[argv.index("--output_folder") + 1]
    os.makedirs(exp, exist_ok=True)
    watch_writes(exp, rec["writes"])

    plain_fit, plain_fit_batch, plain_gathered = SSLBrain.fit, SSLBrain.fit_batch, SSLBrain._gathered_scores

    def fit(self, *args, **kwargs):
        rec["weights_start"] = weights_digest(self.modules["model"])
        out = plain_fit(self, *args, **kwargs)
        rec["weights_end"] = weights_digest(self.modules["model"])
        return out

    pause = float(os.environ.get("ADF_PROBE_BATCH_SLEEP", 0))

    def fit_batch(self, batch):
        audio = hashlib.sha256(batch.wav.data.numpy().tobytes()).hexdigest()[:16]
        rec["batches"].append([self.optimizer_step, list(batch.id), audio])
        time.sleep(pause)
        return plain_fit_batch(self, batch)

    def gathered(self):
        scores, targets, loss = plain_gathered(self)
        eer = self._eer_percent(scores, targets)
        rec["valid"].append([self.optimizer_step, eer, len(scores)])
        return scores, targets, loss

    SSLBrain.fit, SSLBrain.fit_batch, SSLBrain._gathered_scores = fit, fit_batch, gathered
    code = train_main(argv)
    os.makedirs(record_dir, exist_ok=True)
    with open(os.path.join(record_dir, f"rank{rank}.json"), "w", encoding="utf-8") as fout:
        json.dump(rec, fout)
    return code


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
