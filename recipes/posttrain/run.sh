#!/usr/bin/env bash
# Post-training recipe (ESPnet-style stages). With no arguments it runs every
# stage on the embedded example corpus (egs_data/) with the tiny model:
#   0 prepare one manifest per corpus      (adf prepare; missing corpora are skipped)
#   1 merge them into train/valid/test     (adf merge; conf/<corpora>.yaml)
#   2 post-train                           (train.py, resumes from exp/ when interrupted)
#   3 fine-tune the post-trained model     (hparams finetune_lr, finetune_rawboost_algo, finetune_epochs)
#   4 score the test split with both models (adf detect, via ../evaluate/run.sh)
#   5 EER table -> exp/results.md, exp/results.csv (tools/results_table.py: one row per attack,
#     those absent from the training set marked unseen, and Pooled; tools/score_eer.py
#     gives every metric: tools/score_eer.py exp/scores/*.csv --key data/test.csv)
# Every stage skips itself when its outputs exist and its inputs did not change.
# Examples:
#   ./run.sh --stage 2 --stop_stage 2 --model w2v_small --train_args "--precision bf16"
#   ./run.sh --data_root /data --corpora conf/posttrain_29.yaml --model xlsr_1b --ngpu 8
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
finetune_lr=""                    # default: the hparams' finetune_lr
ngpu=0                            # >1: torchrun with one process per GPU
train_args=""                     # extra overrides for train.py, e.g. "--precision bf16"
OPTION_NAMES="stage stop_stage model data_root corpora data_dir exp_dir init_from finetune_lr ngpu train_args"
parse_options "$@"

use_env
hparams=hparams/$model.yaml
[ -f "$hparams" ] || { echo "no $hparams; models: $(ls hparams | sed 's/.yaml//' | tr '\n' ' ')" >&2; exit 2; }
pt_dir=$exp_dir/${model}_posttrain
ft_dir=$exp_dir/${model}_finetune
common=(--data_folder "$data_root" --manifest_folder "$data_dir")

if stage_wanted 0; then
  log "stage 0: per-corpus manifests from $data_root ($corpora)"
  prepare_corpora "$data_root" "$data_dir/manifests" $(adf merge --list-corpora "$corpora")
fi

if stage_wanted 1; then
  log "stage 1: merging manifests into $data_dir/{train,valid,test}.csv"
  merge_corpora "$corpora" "$data_dir/manifests" "$data_dir"
fi

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
  # The hparams' finetune_<key> values (lr, rawboost_algo, epochs) become stage 3's --<key>
  # overrides, unless --train_args already sets that key (a key may be given only once).
  ft_args=(--tag finetune --init_from "$best")
  for key in lr rawboost_algo epochs; do
    value=$(awk -v k="finetune_$key:" '$1 == k {print $2}' "$hparams")
    [ "$key" = lr ] && value=${finetune_lr:-$value}
    opt=$key; [ "$key" = epochs ] && opt=number_of_epochs
    if [ -n "$value" ] && [[ " $train_args " != *" --$opt "* ]]; then ft_args+=(--"$opt" "$value"); fi
  done
  train "$ft_dir" "$(inputs_key "$hparams" "$data_dir/train.csv" "$data_dir/valid.csv" "$best" "${ft_args[*]}" "$train_args")" \
    "${ft_args[@]}"
fi

# Stages 4-5 are recipes/evaluate's stages 2-3 on this recipe's test split and models.
evaluate() {
  local ckpts="" dir
  for dir in "$pt_dir" "$ft_dir"; do
    [ -f "$dir/save/best_model.safetensors" ] && ckpts="$ckpts $(basename "$dir")=$(abs_path "$dir/save/best_model.safetensors")"
  done
  [ -n "$ckpts" ] || { echo "no trained model in $pt_dir or $ft_dir: run stages 2-3" >&2; exit 1; }
  ../evaluate/run.sh --stage "$1" --stop_stage "$1" --ckpts "$ckpts" --test_csv "$(abs_path "$data_dir/test.csv")" \
    --data_root "$(abs_path "$data_root")" --exp_dir "$(abs_path "$exp_dir")" \
    --table_by Attack --seen_csv "$(abs_path "$data_dir/train.csv")"
}

if stage_wanted 4; then
  log "stage 4: scoring $data_dir/test.csv with the post-trained and fine-tuned models"
  evaluate 2
fi

if stage_wanted 5; then
  log "stage 5: EER table -> $exp_dir/results.md, $exp_dir/results.csv"
  evaluate 3
fi
