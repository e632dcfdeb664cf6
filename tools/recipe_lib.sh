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

# abs_path PATH: PATH made absolute (relative to the current folder), for calling another recipe
abs_path() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
