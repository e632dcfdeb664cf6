#!/usr/bin/env bash
# Single-GPU benchmark of adf, at most 8 minutes (see bench/gpu.py for what it measures).
#
#   bench/gpu.sh            # on a CUDA machine: mms_300m + xlsr_1b inference and training
#   bench/gpu.sh --dry      # the same script on the CPU with the tiny model (seconds)
#
# Prints one `BENCH ...` line per measurement; with $OUT set, also writes
# $OUT/bench.jsonl (one JSON object per line), $OUT/gpu.log and $OUT/nvidia-smi.txt.
# Exit status: 0 all checks passed, 1 a check failed, 124 the 8-minute limit hit.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
if [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
log=/dev/null
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    log="$OUT/gpu.log"
    command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
fi
echo "command: bench/gpu.sh $*  (python: $PY, commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown))" | tee "$log"
# 470 s for python leaves room for start-up inside the 8 minutes; gpu.py itself
# skips measurements that would start after its --budget (420 s).
timeout 470 "$PY" bench/gpu.py "$@" 2>&1 | tee -a "$log"
exit "${PIPESTATUS[0]}"
