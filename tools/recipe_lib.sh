# Shared shell helpers for the recipes' run.sh (source it; ESPnet-style stages).
#
#   parse_options "$@"     --name value sets the shell variable `name` (must exist);
#                          --help prints the variables' current values.
#   stage_wanted N          true when N is within --stage/--stop_stage
#   inputs_key ARGS...      one hash of the named files (content below 64 MB, else
#                           size+mtime) and any literal args
#   stage_done MARKER KEY   true when MARKER holds KEY (stage finished on the same inputs)
#   mark_done MARKER KEY    record that the stage finished on those inputs

# use_env: the pinned environment (created when missing) first on PATH, and
# $python: the training launcher, torchrun with one process per GPU when ngpu > 1.
use_env() {
  "$repo/tools/setup_env.sh"
  export PATH="$repo/.venv/bin:$PATH"
  python=python
  if [ "${ngpu:-0}" -gt 1 ]; then python="torchrun --standalone --nproc_per_node=$ngpu"; fi
}

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

parse_options() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --help|-h)
        echo "Options (current values):" >&2
        for v in $OPTION_NAMES; do echo "  --$v ${!v}" >&2; done
        exit 0 ;;
      --*=*) local k="${1%%=*}"; k="${k#--}"; local v="${1#*=}"; shift ;;
      --*) local k="${1#--}"; [ $# -ge 2 ] || { echo "option --$k needs a value" >&2; exit 2; }
           local v="$2"; shift 2 ;;
      *) echo "unexpected argument: $1 (options are --name value)" >&2; exit 2 ;;
    esac
    k="${k//-/_}"
    case " $OPTION_NAMES " in
      *" $k "*) printf -v "$k" '%s' "$v" ;;
      *) echo "unknown option --$k; known: $OPTION_NAMES" >&2; exit 2 ;;
    esac
  done
}

stage_wanted() { [ "$1" -ge "$stage" ] && [ "$1" -le "$stop_stage" ]; }

inputs_key() {
  local a
  for a in "$@"; do
    if [ ! -f "$a" ]; then echo "$a"
    # Content for manifests (rewritten by idempotent stages), size+mtime for big checkpoints.
    elif [ "$(stat -c %s "$a")" -lt 67108864 ]; then sha256sum "$a"
    else stat -c '%n %s %Y' "$a"; fi
  done | sha256sum | cut -d' ' -f1
}

stage_done() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

mark_done() { mkdir -p "$(dirname "$1")"; echo "$2" > "$1"; }

# --- stages shared by the recipes ------------------------------------------------
#   corpus_present NAME ROOT          true when ROOT holds the corpus's folder
#   prepare_corpora ROOT OUT_DIR NAME...
#                                     OUT_DIR/<NAME>.csv for every present corpus (adf
#                                     prepare, incremental); extra `adf prepare` options
#                                     in the array PREPARE_ARGS
#   merge_corpora MANIFESTS OUT ARGS...
#                                     OUT/{train,valid,test}.csv (adf merge ARGS, e.g.
#                                     --config CONF), skipped when up to date
#   train_once DIR KEY CMD...         run a training command for experiment DIR unless
#                                     it already finished on inputs KEY; an interrupted
#                                     run resumes from DIR's last checkpoint

corpus_present() { adf prepare "$1" --root "$2" --check >/dev/null 2>&1; }

PREPARE_ARGS=()
prepare_corpora() {
  local root=$1 out_dir=$2 name; shift 2
  for name in "$@"; do
    if ! corpus_present "$name" "$root"; then
      log "  $name: not found under $root, skipped"
      continue
    fi
    adf prepare "$name" --root "$root" -o "$out_dir/$name.csv" --no-progress "${PREPARE_ARGS[@]}"
  done
}

merge_corpora() {
  local manifests=$1 out=$2 key; shift 2
  key=$(inputs_key "$@" "$manifests"/*.csv)
  if stage_done "$out/.merged" "$key"; then
    log "  $out/{train,valid,test}.csv up to date"
    return
  fi
  adf merge --manifests "$manifests" --out "$out" "$@"
  mark_done "$out/.merged" "$key"
}

train_once() {
  local dir=$1 key=$2; shift 2
  if stage_done "$dir/.done" "$key"; then
    log "  $dir is up to date"
    return
  fi
  "$@"
  mark_done "$dir/.done" "$key"
}

# corpora_stages ROOT CORPORA DATA_DIR
#                                     stages 0-1 of recipes/posttrain and recipes/evaluate:
#                                     one manifest per corpus that CORPORA (an adf merge
#                                     config) names and ROOT holds, merged into
#                                     DATA_DIR/{train,valid,test}.csv
corpora_stages() {
  local root=$1 corpora=$2 data_dir=$3
  if stage_wanted 0; then
    log "stage 0: per-corpus manifests from $root ($corpora)"
    prepare_corpora "$root" "$data_dir/manifests" $(adf merge --list-corpora "$corpora")
  fi
  if stage_wanted 1; then
    log "stage 1: merging the manifests into $data_dir/{train,valid,test}.csv"
    merge_corpora "$data_dir/manifests" "$data_dir" --config "$corpora"
  fi
}

# score_checkpoints TEST_CSV ROOT SCORES_DIR NAME=CHECKPOINT...
#                                     SCORES_DIR/<NAME>.csv for each checkpoint (adf detect;
#                                     extra options in the array DETECT_ARGS), skipped when
#                                     up to date
DETECT_ARGS=()
score_checkpoints() {
  local test_csv=$1 root=$2 scores=$3 item name ckpt out key; shift 3
  [ -f "$test_csv" ] || { echo "no $test_csv to score: run the data stages or pass --test_csv" >&2; exit 1; }
  for item in "$@"; do
    name=${item%%=*}; ckpt=${item#*=}
    out=$scores/$name.csv
    key=$(inputs_key "$ckpt" "$test_csv" "${DETECT_ARGS[@]}")
    if stage_done "$out.done" "$key"; then log "  $out up to date"; continue; fi
    log "  scoring $test_csv with $name ($ckpt)"
    adf detect "$test_csv" --ckpt "$ckpt" -o "$out" --data-root "$root" --overwrite "${DETECT_ARGS[@]}"
    mark_done "$out.done" "$key"
  done
}

# results_table TEST_CSV EXP_DIR NAME...
#                                     EXP_DIR/results.{md,csv}: the EER of each NAME's
#                                     EXP_DIR/scores/<NAME>.csv per test set (tools/results_table.py)
results_table() {
  local test_csv=$1 exp=$2 name scores=(); shift 2
  for name in "$@"; do
    [ -f "$exp/scores/$name.csv" ] && scores+=("$name=$exp/scores/$name.csv")
  done
  [ ${#scores[@]} -gt 0 ] || { echo "no score files in $exp/scores: run the scoring stage" >&2; exit 1; }
  local by=()  # the caller's table_by / seen_csv: one row per value of a manifest column,
  [ -n "${table_by:-}" ] && by+=(--by "$table_by")  # values the training set lacks marked unseen
  [ -n "${table_by:-}" ] && [ -n "${seen_csv:-}" ] && by+=(--seen "$seen_csv")
  # the caller's published: a YAML of a paper's EERs, shown beside the measured rows
  [ -z "${table_by:-}" ] && [ -n "${published:-}" ] && by+=(--published "$published")
  python "$repo/tools/results_table.py" "${scores[@]}" --key "$test_csv" "${by[@]}" \
    --markdown "$exp/results.md" --csv "$exp/results.csv"
}

# abs_path PATH: PATH made absolute (relative to the current folder), for calling another recipe
abs_path() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
