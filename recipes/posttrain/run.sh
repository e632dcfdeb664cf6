#!/usr/bin/env bash
# Post-training recipe (ESPnet-style stages). With no arguments it runs every
# stage on the embedded example corpus (egs_data/) with two models: stats_trees (clip
# statistics + boosted trees, the example's default detector) and the tiny SSL model:
#   0 prepare one manifest per corpus      (adf prepare; missing corpora are skipped)
#   1 merge them into train/valid/test     (adf merge; conf/<corpora>.yaml)
#   2 post-train each model                (train.py, resumes from exp/ when interrupted;
#                                           stats_trees is fitted in one pass)
#   3 fine-tune each post-trained model    (train.py --experiment finetune: the hparams' finetune:
#                                           settings; skipped for a model whose hparams have none)
#   4 score the test split with every model (adf detect, as recipes/evaluate does)
#   5 EER table -> exp/results.md, exp/results.csv (tools/results_table.py: one row per attack,
#     those absent from the training set marked unseen, and Pooled, one column per model;
#     tools/score_eer.py gives every metric: tools/score_eer.py exp/scores/*.csv --key data/test.csv)
# Every stage skips itself when its outputs exist and its inputs did not change.
# Examples:
#   ./run.sh --stage 2 --stop_stage 2 --model w2v_small --train_args "--precision bf16"
#   ./run.sh --data_root /data --corpora conf/paper.yaml --model xlsr_1b --ngpu 8
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)
. "$repo/tools/recipe_lib.sh"

stage=0
stop_stage=5
model="stats_trees tiny"          # hparams/<model>.yaml; several (quoted) run one after the other
data_root="$repo/egs_data"        # folder holding the corpora
corpora=conf/egs.yaml             # which corpora feed train/valid/test
data_dir=data                     # manifests written here
exp_dir=exp                       # experiments written here
init_from=""                      # pre-trained SSL checkpoint (fairseq .pt) to post-train from
finetune_lr=""                    # stage 3's lr (default: the hparams' finetune: lr)
ngpu=0                            # >1: torchrun with one process per GPU
train_args=""                     # extra overrides for every model's train.py, e.g. "--precision bf16"
OPTION_NAMES="stage stop_stage model data_root corpora data_dir exp_dir init_from finetune_lr ngpu train_args"
parse_options "$@"

use_env
models=($model)
[ ${#models[@]} -gt 0 ] || { echo "--model names no model" >&2; exit 2; }
for m in "${models[@]}"; do
  [ -f "hparams/$m.yaml" ] || { echo "no hparams/$m.yaml; models: $(ls hparams | sed 's/.yaml//' | grep -vx posttrain | tr '\n' ' ')" >&2; exit 2; }
done
common=(--data_folder "$data_root" --manifest_folder "$data_dir")

corpora_stages "$data_root" "$corpora" "$data_dir"

# has_key HPARAMS KEY: whether the file (or a base: it changes) defines KEY at its top level.
has_key() {
  python -c 'import sys; from adf.hparams import read_chain; sys.exit(sys.argv[2] not in read_chain(sys.argv[1]).keys())' "$1" "$2"
}

# train HPARAMS DIR KEY ARGS...: train.py into DIR unless it already finished on the same inputs.
# A model without an optimiser (stats_trees: fitted in one pass) runs in one process, never torchrun.
train() {
  local hparams=$1 dir=$2 key=$3 launcher=$python; shift 3
  has_key "$hparams" opt_class || launcher=python
  train_once "$dir" "$key" $launcher train.py "$hparams" "${common[@]}" --output_folder "$dir" "$@" $train_args
}

ckpts=()  # NAME=CHECKPOINT of every trained model, for stages 4-5
for m in "${models[@]}"; do
  hparams=hparams/$m.yaml
  pt_dir=$exp_dir/${m}_posttrain
  ft_dir=$exp_dir/${m}_finetune

  if stage_wanted 2; then
    log "stage 2: post-training $m -> $pt_dir"
    args=()
    [ -n "$init_from" ] && args=(--init_from "$init_from")
    train "$hparams" "$pt_dir" "$(inputs_key "$hparams" "$data_dir/train.csv" "$data_dir/valid.csv" "$init_from" "$train_args")" "${args[@]}"
  fi

  if stage_wanted 3; then
    if has_key "$hparams" finetune; then
      log "stage 3: fine-tuning $pt_dir -> $ft_dir"
      best=$pt_dir/save/best_model.safetensors
      [ -f "$best" ] || { echo "stage 3 needs $best: run stage 2 first" >&2; exit 1; }
      # The hparams' `finetune:` settings (adf.hparams); --train_args still win, and a key may be
      # given only once, so --finetune_lr yields to an --lr there.
      ft_args=(--experiment finetune --init_from "$best")
      [ -n "$finetune_lr" ] && [[ " $train_args " != *" --lr "* ]] && ft_args+=(--lr "$finetune_lr")
      train "$hparams" "$ft_dir" "$(inputs_key "$hparams" "$data_dir/train.csv" "$data_dir/valid.csv" "$best" "${ft_args[*]}" "$train_args")" \
        "${ft_args[@]}"
    else
      log "stage 3: $m has no fine-tuning ($hparams defines no finetune: settings): skipped"
    fi
  fi

  for dir in "$pt_dir" "$ft_dir"; do
    [ -f "$dir/save/best_model.safetensors" ] && ckpts+=("$(basename "$dir")=$dir/save/best_model.safetensors")
  done
done

# Stages 4-5 score this recipe's test split as recipes/evaluate does (tools/recipe_lib.sh).
if stage_wanted 4; then
  log "stage 4: scoring $data_dir/test.csv with every trained model (${models[*]})"
  [ ${#ckpts[@]} -gt 0 ] || { echo "stage 4: no trained model of ${models[*]} in $exp_dir: run stages 2-3" >&2; exit 1; }
  score_checkpoints "$data_dir/test.csv" "$(abs_path "$data_root")" "$exp_dir/scores" "${ckpts[@]}"
fi

if stage_wanted 5; then
  log "stage 5: EER table -> $exp_dir/results.md, $exp_dir/results.csv"
  table_by=Attack seen_csv=$data_dir/train.csv \
    results_table "$data_dir/test.csv" "$exp_dir" "${ckpts[@]%%=*}"
fi
