#!/usr/bin/env bash
# Zero-shot evaluation: score one or more detectors on every available test set and
# write one EER table (rows = models, columns = test sets), as in the paper.
#   0 prepare the test corpora found under --data_root       (adf prepare)
#   1 merge them into data/test.csv                           (adf merge; conf/<sets>.yaml)
#   2 score data/test.csv with each checkpoint                (adf detect)
#   3 EER table -> exp/results.md and exp/results.csv         (tools/results_table.py)
#     with the paper's published EERs (conf/published.yaml) as rows beside the measured ones
# With no arguments it scores the models that recipes/posttrain and recipes/finetune
# produced on the example corpus's test split (egs_data/). Examples:
#   ./run.sh --ckpts "xlsr1b=/models/XLS-R-1B.ckpt mms300m=/models/MMS-300M.ckpt" \
#            --data_root /data --corpora conf/paper.yaml --device cuda --precision bf16
#   ./run.sh --stage 2 --test_csv ../finetune/data/egs_10s/test.csv --ckpts "ft=model.safetensors"
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)
. "$repo/tools/recipe_lib.sh"

stage=0
stop_stage=3
ckpts=""                          # "NAME=CHECKPOINT ..." (default: the recipes' models, see below)
model=""                          # architecture when a checkpoint does not say (adf detect --model)
data_root="$repo/egs_data"        # folder holding the corpora
corpora=conf/egs.yaml             # which test sets (conf/paper.yaml: the paper's)
data_dir=data                     # manifests written here
test_csv=""                       # score this manifest instead of stages 0-1's data/test.csv
exp_dir=exp                       # scores/ and results.{md,csv} written here
device=""                         # default: cuda when available
precision=auto                    # auto (bf16 where native, else fp32) | fp32 | bf16 | fp16 | int8
batch_size=8
detect_args=""                    # more adf detect options, e.g. "--window 4 --hop 4"
table_by=""                       # stage 3: one row per value of this manifest column (e.g. Attack)
seen_csv=""                       # stage 3 with table_by: mark values this manifest (training set) lacks
published=conf/published.yaml     # stage 3: the paper's reported EERs as extra rows ("" for none)
OPTION_NAMES="stage stop_stage ckpts model data_root corpora data_dir test_csv exp_dir device precision batch_size detect_args table_by seen_csv published"
parse_options "$@"

use_env
test_csv=${test_csv:-$data_dir/test.csv}

if [ -z "$ckpts" ]; then  # the models the other recipes trained, when present
  for best in ../posttrain/exp/*/save/best_model.safetensors ../finetune/exp/*/save/best_model.safetensors; do
    [ -f "$best" ] || continue
    name=$(basename "$(dirname "$(dirname "$best")")")
    ckpts="$ckpts $name=$best"
  done
fi

corpora_stages "$data_root" "$corpora" "$data_dir"

if stage_wanted 2; then
  log "stage 2: scoring $test_csv"
  [ -n "${ckpts// }" ] || { echo "stage 2: no checkpoints: pass --ckpts \"NAME=PATH ...\" or run recipes/posttrain first" >&2; exit 1; }
  DETECT_ARGS=(--precision "$precision" --batch-size "$batch_size")
  [ -n "$model" ] && DETECT_ARGS+=(--model "$model")
  [ -n "$device" ] && DETECT_ARGS+=(--device "$device")
  DETECT_ARGS+=($detect_args)
  score_checkpoints "$test_csv" "$data_root" "$exp_dir/scores" $ckpts
fi

if stage_wanted 3; then
  log "stage 3: EER table -> $exp_dir/results.md, $exp_dir/results.csv"
  results_table "$test_csv" "$exp_dir" $(for item in $ckpts; do echo "${item%%=*}"; done)
fi
