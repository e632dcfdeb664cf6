#!/usr/bin/env bash
# Drift monitoring demo: how far do incoming clips drift from a reference set, in a detector's
# embedding space? With no arguments it runs on the example corpus egs_data/:
#   0 manifest of the corpus; reference = 2/3 of the training split's real clips (per
#     speaker), incoming = the held-back third (no drift expected), the real clips of the
#     other splits (new speakers) and each attack family    (adf prepare, tools/drift_split.py)
#   1 pooled embeddings of both sides                        (adf embed: batched, resumable)
#   2 drift per incoming group -> exp/drift/drift.{json,csv,png}, exp/drift/drift.md (adf drift)
# The model: --ckpt, else recipes/finetune's fine-tuned tiny model, else recipes/posttrain's,
# else a seeded random tiny model (exp/random_tiny.safetensors; says so).
# Examples:
#   ./run.sh --ckpt /models/AntiDeepfake_XLS-R-1B.ckpt --device cuda --precision bf16
#   ./run.sh --stage 2 --drift_args "--permutations 2000 --kl-dim 32 --threshold frechet=50"
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)
. "$repo/tools/recipe_lib.sh"

stage=0
stop_stage=2
corpus=egs                        # any corpus adf prepare knows (with train/valid/test rows)
data_root="$repo/egs_data"        # folder holding it
ckpt=""                           # detector checkpoint (default: see above)
holdout=0.3333                    # share of the reference clips held back as a no-drift group
data_dir=data                     # manifests written here
exp_dir=exp                       # embeddings and the report written here
device=cpu
precision=fp32
batch_size=8
drift_args=""                     # more adf drift options
OPTION_NAMES="stage stop_stage corpus data_root ckpt holdout data_dir exp_dir device precision batch_size drift_args"
parse_options "$@"

use_env
if [ -z "$ckpt" ]; then
  for best in ../finetune/exp/tiny_egs_default/save/best_model.safetensors \
              ../posttrain/exp/tiny_posttrain/save/best_model.safetensors; do
    if [ -f "$best" ]; then ckpt=$best; break; fi
  done
fi
if [ -z "$ckpt" ]; then
  ckpt=$exp_dir/random_tiny.safetensors
  log "no trained model found: using a seeded RANDOM tiny model ($ckpt)"
  [ -f "$ckpt" ] || python -c '
import sys, torch
from adf.checkpoints import save_checkpoint
from adf.models.classifier import build_classifier
torch.manual_seed(0)
save_checkpoint(build_classifier("tiny"), sys.argv[1])' "$ckpt"
fi
log "model: $ckpt"

if stage_wanted 0; then
  log "stage 0: $corpus manifest and the reference/incoming split -> $data_dir"
  mkdir -p "$data_dir"
  adf prepare "$corpus" --root "$data_root" -o "$data_dir/$corpus.csv" --no-progress
  python "$repo/tools/drift_split.py" "$data_dir/$corpus.csv" --out "$data_dir" --holdout "$holdout"
fi

if stage_wanted 1; then
  for side in reference incoming; do
    key=$(inputs_key "$ckpt" "$data_dir/$side.csv" "$precision")
    if stage_done "$exp_dir/.$side.embedded" "$key"; then
      log "stage 1: $exp_dir/$side.npy up to date"
      continue
    fi
    # Same inputs as an interrupted run: resume it; else start afresh.
    fresh=--overwrite
    stage_done "$exp_dir/.$side.started" "$key" && fresh=""
    mark_done "$exp_dir/.$side.started" "$key"
    log "stage 1: embedding $data_dir/$side.csv -> $exp_dir/$side.npy"
    adf embed --ckpt "$ckpt" -o "$exp_dir/$side.npy" --data-root "$data_root" --device "$device" \
      --precision "$precision" --batch-size "$batch_size" $fresh "$data_dir/$side.csv"
    mark_done "$exp_dir/.$side.embedded" "$key"
  done
fi

if stage_wanted 2; then
  log "stage 2: drift of each incoming group from the reference -> $exp_dir/drift"
  mkdir -p "$exp_dir/drift"
  adf drift --reference "$exp_dir/reference.npy" --incoming "$exp_dir/incoming.npy" \
    --manifest "$data_dir/groups.csv" --by Group -o "$exp_dir/drift" $drift_args | tee "$exp_dir/drift/drift.md.tmp"
  mv "$exp_dir/drift/drift.md.tmp" "$exp_dir/drift/drift.md"
fi
