#!/usr/bin/env bash
# Post-training recipe (ESPnet-style stages). With no arguments it runs every
# stage on the embedded example corpus (egs_data/) with the tiny model:
#   0 prepare one manifest per corpus      (adf prepare; missing corpora are skipped)
#   1 merge them into train/valid/test     (adf merge; conf/<corpora>.yaml)
#   2 post-train                           (train.py, resumes from exp/ when interrupted)
#   3 fine-tune the post-trained model
#   4 score the test split with both models
#   5 print the EER table                  (tools/score_eer.py) and write results.md
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

"$repo/tools/setup_env.sh"
export PATH="$repo/.venv/bin:$PATH"
python=python
[ "$ngpu" -gt 1 ] && python="torchrun --standalone --nproc_per_node=$ngpu"
hparams=hparams/$model.yaml
[ -f "$hparams" ] || { echo "no $hparams; models: $(ls hparams | sed 's/.yaml//' | tr '\n' ' ')" >&2; exit 2; }
pt_dir=$exp_dir/${model}_posttrain
ft_dir=$exp_dir/${model}_finetune
common=(--data_folder "$data_root" --manifest_folder "$data_dir")

if stage_wanted 0; then
  log "stage 0: per-corpus manifests from $data_root ($corpora)"
  for name in $(adf merge --list-corpora "$corpora"); do
    out=$data_dir/manifests/$name.csv
    if ! adf prepare "$name" --root "$data_root" --check 2>/dev/null; then
      log "  $name: not found under $data_root, skipped"
      continue
    fi
    adf prepare "$name" --root "$data_root" -o "$out"   # incremental: reuses unchanged rows
  done
fi

if stage_wanted 1; then
  key=$(inputs_key "$corpora" "$data_dir"/manifests/*.csv)
  if stage_done "$data_dir/.merged" "$key"; then
    log "stage 1: $data_dir/{train,valid,test}.csv up to date"
  else
    log "stage 1: merging manifests into $data_dir/{train,valid,test}.csv"
    adf merge --config "$corpora" --manifests "$data_dir/manifests" --out "$data_dir"
    mark_done "$data_dir/.merged" "$key"
  fi
fi

# train DIR KEY ARGS...: train.py into DIR unless it already finished on the same inputs.
train() {
  local dir=$1 key=$2; shift 2
  if stage_done "$dir/.done" "$key"; then
    log "  $dir is up to date"
    return
  fi
  $python train.py "$hparams" "${common[@]}" --output_folder "$dir" "$@" $train_args
  mark_done "$dir/.done" "$key"
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
  lr=${finetune_lr:-$(awk '/^finetune_lr:/ {print $2}' "$hparams")}
  train "$ft_dir" "$(inputs_key "$hparams" "$data_dir/train.csv" "$data_dir/valid.csv" "$best" "$lr" "$train_args")" \
    --tag finetune --init_from "$best" --lr "$lr"
fi

if stage_wanted 4; then
  for dir in "$pt_dir" "$ft_dir"; do
    [ -f "$dir/save/best_model.safetensors" ] || { log "stage 4: $dir has no model, skipped"; continue; }
    out=$dir/scores/test.csv
    key=$(inputs_key "$dir/save/best_model.safetensors" "$data_dir/test.csv")
    if stage_done "$out.done" "$key"; then log "stage 4: $out up to date"; continue; fi
    log "stage 4: scoring $data_dir/test.csv with $dir"
    python train.py "$hparams" "${common[@]}" --output_folder "$dir" --mode inference $train_args
    mark_done "$out.done" "$key"
  done
fi

if stage_wanted 5; then
  log "stage 5: EER of the test split"
  scores=()
  for dir in "$pt_dir" "$ft_dir"; do [ -f "$dir/scores/test.csv" ] && scores+=("$dir/scores/test.csv"); done
  [ ${#scores[@]} -gt 0 ] || { echo "stage 5: no score files; run stage 4" >&2; exit 1; }
  python "$repo/tools/score_eer.py" "${scores[@]}" --key "$data_dir/test.csv" --markdown "$exp_dir/results.md"
  log "stage 5: table written to $exp_dir/results.md"
fi
