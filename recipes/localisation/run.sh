#!/usr/bin/env bash
# Partial-spoof localisation on the example corpus (egs_data/ + its spliced clips egs_data/partial/):
#   0 prepare the manifests (egs, egs_partial: FakeRegions, docs/data.md)     (adf prepare)
#   1 merge them into train/valid/test                                        (adf merge)
#   2 train the tiny model with frame targets (targets: frames)               (../posttrain/train.py)
#   3 segment scores and fake regions of the test split                       (adf detect --resolution)
#   4 segment-level EER at 20-640 ms, range-based EER, fake-region P/R/F1 -> exp/results.md,
#     exp/results.json, and the timeline of one spliced test clip -> exp/timeline.png
#                                                                             (adf score-segments)
# Every stage skips itself when its outputs exist and its inputs did not change.
# Examples:
#   ./run.sh --epochs 8 --init_from ../posttrain/exp/tiny_posttrain/save/best_model.safetensors
#   ./run.sh --stage 3 --resolution 0.16 --threshold -1
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)
. "$repo/tools/recipe_lib.sh"

stage=0
stop_stage=4
model=tiny                        # ../posttrain/hparams/<model>.yaml (a mean back-end model)
data_root="$repo/egs_data"        # folder holding the corpora
corpora=conf/egs_partial.yaml     # which corpora feed train/valid/test
data_dir=data
exp_dir=exp
init_from=""                      # start from this checkpoint (e.g. a post-trained model)
epochs=4                          # training epochs
resolution=0.02                   # stage 3's segment length (0.02: every coarser EER follows)
threshold=0                       # stage 3's RTTM: fake when the segment score is below this
metrics_threshold=eer             # stage 4's P/R/F1 and figure: a score, or eer (the 20 ms segment-EER point)
collar=0.2                        # seconds, for the fake-region P/R/F1
plot_id=""                        # utterance of the timeline (default: the first spliced test clip)
precision=fp32                    # scoring precision (fp32: the same numbers on every machine)
train_args=""                     # extra overrides for train.py
OPTION_NAMES="stage stop_stage model data_root corpora data_dir exp_dir init_from epochs resolution threshold metrics_threshold collar plot_id precision train_args"
parse_options "$@"

use_env
hparams=../posttrain/hparams/$model.yaml
[ -f "$hparams" ] || { echo "no $hparams" >&2; exit 2; }
dir=$exp_dir/${model}_frames
ckpt=$dir/save/best_model.safetensors

corpora_stages "$data_root" "$corpora" "$data_dir"

if stage_wanted 2; then
  log "stage 2: training $model with frame targets -> $dir"
  args=(--targets frames --number_of_epochs "$epochs")
  [ -n "$init_from" ] && args+=(--init_from "$init_from")
  train_once "$dir" "$(inputs_key "$hparams" "$data_dir/train.csv" "$data_dir/valid.csv" "$init_from" "$epochs" "$train_args")" \
    python ../posttrain/train.py "$hparams" --data_folder "$data_root" --manifest_folder "$data_dir" \
    --output_folder "$dir" "${args[@]}" $train_args
fi

scores=$exp_dir/scores
if stage_wanted 3; then
  log "stage 3: segment scores every ${resolution} s of $data_dir/test.csv -> $scores/"
  [ -f "$ckpt" ] || { echo "stage 3 needs $ckpt: run stage 2 first" >&2; exit 1; }
  key=$(inputs_key "$ckpt" "$data_dir/test.csv" "$resolution" "$threshold" "$precision")
  if stage_done "$scores/.done" "$key"; then
    log "  $scores is up to date"
  else
    mkdir -p "$scores"
    adf detect --ckpt "$ckpt" --data-root "$(abs_path "$data_root")" --precision "$precision" \
      --resolution "$resolution" --threshold "$threshold" -o "$scores/test.csv" \
      --segments "$scores/test.segments.csv" --rttm "$scores/test.rttm" "$data_dir/test.csv"
    mark_done "$scores/.done" "$key"
  fi
fi

if stage_wanted 4; then
  log "stage 4: localisation metrics -> $exp_dir/results.md, $exp_dir/timeline.png"
  [ -n "$plot_id" ] || plot_id=$(python -c '
import sys, pandas as pd
df = pd.read_csv(sys.argv[1], keep_default_na=False)
print(df[df.ID.str.startswith("EGSPART-")].ID.iloc[0])' "$data_dir/test.csv")
  adf score-segments "$scores/test.segments.csv" --key "$data_dir/test.csv" \
    --audio-root "$(abs_path "$data_root")" --collar "$collar" --threshold "$metrics_threshold" \
    --json "$exp_dir/results.json" --plot "$plot_id" -o "$exp_dir/timeline.png" | tee "$exp_dir/results.md"
fi
