#!/usr/bin/env bash
# Post-training recipe (ESPnet-style stages). With no arguments it runs every
# stage on the embedded example corpus (egs_data/) with the tiny model:
#   0 prepare one manifest per corpus      (adf prepare; missing corpora are skipped)
#   1 merge them into train/valid/test     (adf merge; conf/<corpora>.yaml)
#   2 post-train                           (train.py, resumes from exp/ when interrupted)
#   3 fine-tune the post-trained model     (train.py --experiment finetune: the hparams' finetune: settings)
#   4 score the test split with both models (adf detect, as recipes/evaluate does)
#   5 EER table -> exp/results.md, exp/results.csv (tools/results_table.py: one row per attack,
#     those absent from the training set marked unseen, and Pooled; tools/score_eer.py
#     gives every metric: tools/score_eer.py exp/scores/*.csv --key data/test.csv)
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
model=tiny                        # hparams/<model>.yaml
data_root="$repo/egs_data"        # folder holding the corpora
corpora=conf/egs.yaml             # which corpora feed train/valid/test
data_dir=data                     # manifests written here
exp_dir=exp                       # experiments written here
init_from=""                      # pre-trained SSL checkpoint (fairseq .pt) to post-train from
finetune_lr=""                    # stage 3's lr (default: the hparams' finetune: lr)
ngpu=0                            # >1: torchrun with one process per GPU
train_args=""                     # extra overrides for train.py, e.g. "--precision bf16"
OPTION_NAMES="stage stop_stage model data_root corpora data_dir exp_dir init_from finetune_lr ngpu train_args"
parse_options "$@"

use_env
hparams=hparams/$model.yaml
[ -f "$hparams" ] || { echo "no $hparams; models: $(ls hparams | sed 's/.yaml//' | grep -vx posttrain | tr '\n' ' ')" >&2; exit 2; }
pt_dir=$exp_dir/${model}_posttrain
ft_dir=$exp_dir/${model}_finetune
common=(--data_folder "$data_root" --manifest_folder "$data_dir")

corpora_stages "$data_root" "$corpora" "$data_dir"

# train DIR KEY ARGS...: train.py into DIR unless it already finished on the same inputs.
train() {
  local dir=$1 key=$2; shift 2
  train_once "$dir" "$key" $python train.py "$hparams" "${common[@]}" --output_folder "$dir" "$@" $train_args
}

if stage_wanted 2; then
  log "stage 2: post-training $model -> $pt_dir"
  args=()
  [ -n "$init_from" ] && args=(--init_from "$init_from")
  train "$pt_dir" "$(inputs_key "$hparams" "$data_dir/train.csv" "$data_dir/valid.csv" "$init_from" "$train_args")" "${args[@]}"
fi

if stage_wanted 3; then
  log "stage 3: fine-tuning $pt_dir -> $ft_dir"
  best=$pt_dir/save/best_model.safetensors
  [ -f "$best" ] || { echo "stage 3 needs $best: run stage 2 first" >&2; exit 1; }
  # The hparams' `finetune:` settings (adf.hparams); --train_args still win, and a key may be
  # given only once, so --finetune_lr yields to an --lr there.
  ft_args=(--experiment finetune --init_from "$best")
  [ -n "$finetune_lr" ] && [[ " $train_args " != *" --lr "* ]] && ft_args+=(--lr "$finetune_lr")
  train "$ft_dir" "$(inputs_key "$hparams" "$data_dir/train.csv" "$data_dir/valid.csv" "$best" "${ft_args[*]}" "$train_args")" \
    "${ft_args[@]}"
fi

# Stages 4-5 score this recipe's test split as recipes/evaluate does (tools/recipe_lib.sh).
if stage_wanted 4; then
  log "stage 4: scoring $data_dir/test.csv with the post-trained and fine-tuned models"
  ckpts=()
  for dir in "$pt_dir" "$ft_dir"; do
    [ -f "$dir/save/best_model.safetensors" ] && ckpts+=("$(basename "$dir")=$dir/save/best_model.safetensors")
  done
  [ ${#ckpts[@]} -gt 0 ] || { echo "stage 4: no trained model in $pt_dir or $ft_dir: run stages 2-3" >&2; exit 1; }
  score_checkpoints "$data_dir/test.csv" "$(abs_path "$data_root")" "$exp_dir/scores" "${ckpts[@]}"
fi

if stage_wanted 5; then
  log "stage 5: EER table -> $exp_dir/results.md, $exp_dir/results.csv"
  table_by=Attack seen_csv=$data_dir/train.csv \
    results_table "$data_dir/test.csv" "$exp_dir" "$(basename "$pt_dir")" "$(basename "$ft_dir")"
fi
