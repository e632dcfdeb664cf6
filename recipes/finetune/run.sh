#!/usr/bin/env bash
# Fine-tuning recipe: adapt a post-trained detector to a target corpus, with RawBoost,
# at one of the paper's input durations (4, 10, 13, 30, 50 s).
#   0 prepare the target corpus (and the validation corpus)  (adf prepare)
#   1 split it into train/valid/test                          (adf merge)
#   2 fine-tune                                               (train.py, resumes when interrupted)
#   3 score the target's test split, EER table                (adf detect, as recipes/evaluate)
# Defaults: Deepfake-Eval-2024 under --data_root when present (validated on the ASVspoof
# 2019 LA dev set, as in the reference), else the example corpus egs_data/; the model is
# recipes/posttrain's post-trained one when present, else a random init (with a warning).
# The hyper-parameters are recipes/posttrain's with their fine-tuning settings
# (train.py --experiment finetune: the hparams' `finetune:` lr, RawBoost, epochs).
# Examples:
#   ./run.sh --data_root /data --model xlsr_1b --init_from /models/AntiDeepfake_XLS-R-1B.ckpt \
#            --duration 10 --ngpu 4 --train_args "--precision bf16"
#   ./run.sh --corpus In-the-Wild --valid_corpus ASVspoof2019-LA --data_root /data --duration 4
#   ./run.sh --method grpo --train_args "--grpo_group_size 8 --grpo_beta 0.04"   # GRPO instead of cross-entropy
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)
. "$repo/tools/recipe_lib.sh"

stage=0
stop_stage=3
model=tiny                        # ../posttrain/hparams/<model>.yaml
data_root="$repo/egs_data"        # folder holding the corpora
corpus=""                         # target corpus (default: Deepfake-Eval-2024 if present, else egs)
valid_corpus=""                   # corpus whose valid rows validate (default: DFE2024 -> ASVspoof2019-LA,
                                  #   others -> the target's own valid rows)
duration=""                       # input seconds: segment length (segmented corpora such as DFE2024)
                                  #   and training crop (default: the corpus's segments, 10-13 s crops)
init_from=""                      # post-trained checkpoint (ours, AntiDeepfake .ckpt/.safetensors)
posttrain_exp=../posttrain/exp    # default init_from: <posttrain_exp>/<model>_posttrain/save/best_model.safetensors
rawboost=""                       # RawBoost algorithm 0-8 for the training clips (0: none;
                                  #   default: the hparams' finetune: rawboost_algo)
lr=""                             # default: the hparams' finetune: lr
method=ce                         # ce (cross-entropy; sft: the same) or grpo (hparams grpo_*, adf/grpo.py)
data_dir=data                     # manifests written here
exp_dir=exp                       # experiments written here
ngpu=0                            # >1: torchrun with one process per GPU
train_args=""                     # extra overrides for train.py, e.g. "--precision bf16"
OPTION_NAMES="stage stop_stage model data_root corpus valid_corpus duration init_from posttrain_exp rawboost lr method data_dir exp_dir ngpu train_args"
parse_options "$@"

use_env
hparams=../posttrain/hparams/$model.yaml
[ -f "$hparams" ] || { echo "no $hparams; models: $(ls ../posttrain/hparams | sed 's/.yaml//' | grep -vx posttrain | tr '\n' ' ')" >&2; exit 2; }

if [ -z "$corpus" ]; then
  corpus=egs
  corpus_present Deepfake-Eval-2024 "$data_root" && corpus=Deepfake-Eval-2024
fi
[ -z "$valid_corpus" ] && [ "$corpus" = Deepfake-Eval-2024 ] && valid_corpus=ASVspoof2019-LA
case $method in ce|sft|grpo) ;; *) echo "--method must be ce, sft or grpo, not $method" >&2; exit 2 ;; esac
tag=${corpus}_${duration:-default}${duration:+s}
split_dir=$data_dir/$tag
[ "$method" = ce ] || tag=${tag}_$method   # its own experiment folder; the data split is shared
ft_dir=$exp_dir/${model}_$tag
if [ -z "$init_from" ]; then
  init_from=$posttrain_exp/${model}_posttrain/save/best_model.safetensors
  if [ ! -f "$init_from" ]; then
    log "WARNING: no post-trained $model model ($init_from): fine-tuning from a RANDOM initialisation"
    log "         (run recipes/posttrain/run.sh first, or pass --init_from)"
    init_from=""
  fi
fi

if stage_wanted 0; then
  log "stage 0: manifests of $corpus${valid_corpus:+ and $valid_corpus} from $data_root"
  corpus_present "$corpus" "$data_root" || { echo "stage 0: $corpus not found under $data_root" >&2; exit 1; }
  PREPARE_ARGS=()
  # --duration cuts segmented test sets (Deepfake-Eval-2024) into segments; other corpora only get the crop.
  [ -n "$duration" ] && adf prepare "$corpus" --is-segmented && PREPARE_ARGS=(--segment-seconds "$duration")
  prepare_corpora "$data_root" "$split_dir/manifests" "$corpus"
  PREPARE_ARGS=()
  [ -n "$valid_corpus" ] && prepare_corpora "$data_root" "$data_dir/manifests" "$valid_corpus"
fi

if stage_wanted 1; then
  log "stage 1: $corpus -> $split_dir/{train,valid,test}.csv"
  # The target's test rows are held out; --valid_corpus contributes only its validation rows.
  merge_args=(--train "$corpus" --test --holdout-test "$corpus" --require-valid)
  [ -n "$valid_corpus" ] && merge_args+=(--valid-from "$data_dir/manifests/$valid_corpus.csv")
  merge_corpora "$split_dir/manifests" "$split_dir" "${merge_args[@]}"
fi

if stage_wanted 2; then
  log "stage 2: fine-tuning ${init_from:-a random init} on $corpus -> $ft_dir"
  args=(--experiment finetune --tag "finetune_$tag")
  [ -n "$lr" ] && args+=(--lr "$lr")
  [ -n "$rawboost" ] && args+=(--rawboost_algo "$rawboost")
  [ "$method" = ce ] || args+=(--method "$method")
  [ -n "$init_from" ] && args+=(--init_from "$init_from")
  [ -n "$duration" ] && args+=(--crop_max_seconds "$duration" --crop_min_seconds "$duration")
  train_once "$ft_dir" "$(inputs_key "$hparams" "$split_dir/train.csv" "$split_dir/valid.csv" "$init_from" "${args[*]}" "$train_args")" \
    $python train.py "$hparams" --data_folder "$data_root" --manifest_folder "$split_dir" \
    --output_folder "$ft_dir" "${args[@]}" $train_args
fi

if stage_wanted 3; then
  log "stage 3: scoring $split_dir/test.csv, EER table -> $ft_dir/results.md"
  score_checkpoints "$split_dir/test.csv" "$(abs_path "$data_root")" "$ft_dir/scores" \
    "${model}_$tag=$ft_dir/save/best_model.safetensors"
  results_table "$split_dir/test.csv" "$ft_dir" "${model}_$tag"
fi
