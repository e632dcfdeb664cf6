#!/usr/bin/env bash
# The whole benchmark harness in one command (see bench/README.md for what each part measures).
#
#   bench/run.sh            every measurement, full size: CPU inference (transformers baseline side
#                           by side, MFU, padding, decoding overlap, start-up, xlsr_2b bf16 memory:
#                           ~9 GB of RAM and disk), bf16 agreement on egs_data, training, host
#                           overhead, scorer, merge, header reading (about 6 minutes on 2 cores);
#                           then bench/gpu.sh when a CUDA device is present
#   bench/run.sh --quick    the same scripts on the tiny model and small sizes (about a minute):
#                           checks the harness, measures nothing worth quoting
#
# Every measurement prints one `BENCH <kind> key=value ...` line. They are collected in
# $OUT/bench.jsonl (one JSON object each) with the whole log in $OUT/bench.log; $OUT defaults
# to bench/out/<UTC date-time>. The agreement runs on the README command's fine-tuned
# checkpoint when it exists (cd recipes/posttrain && ./run.sh), else on random weights.
# A part that fails is reported and the others still run; the exit status is 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
quick=0
case "${1:-}" in
    --quick) quick=1 ;;
    "") ;;
    *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
esac
if [ -n "${PYTHON:-}" ]; then
    py=$PYTHON
else
    tools/setup_env.sh || exit 1
    py=.venv/bin/python
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OUT=${OUT:-bench/out/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
log="$OUT/bench.log"
echo "bench/run.sh $* (python: $py, commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown), out: $OUT)" | tee "$log"

failed=()
part() {  # part NAME COMMAND...: run one benchmark script, log it, remember a failure
    local name=$1
    shift
    echo "== $name: $*" | tee -a "$log"
    "$@" 2>&1 | tee -a "$log"
    local status=${PIPESTATUS[0]}
    if [ "$status" -ne 0 ]; then
        echo "== $name FAILED (exit $status)" | tee -a "$log"
        failed+=("$name")
    fi
}

ckpt=recipes/posttrain/exp/tiny_finetune/save/best_model.safetensors
agree=(bench/infer.py --no-throughput --startup "" --memory "" --pipeline "" --models tiny
       --agreement egs_data/metadata.csv)
if [ "$quick" = 1 ]; then
    part infer "$py" bench/infer.py --models tiny --clips 4 --repeats 1 --batch-size 4 --workers 0 \
        --pipeline tiny --startup tiny --memory tiny
    part agreement "$py" "${agree[@]}" --workers 0
    part train "$py" bench/train.py --models tiny --steps 1 --files 12 --workers 0
    part overhead "$py" bench/overhead.py --models tiny --repeats 2 --no-compile
    part score "$py" bench/score.py --n 100000 --subsets 4 --naive-n 1000
    part merge "$py" bench/merge.py --rows 20000
    part headers "$py" bench/prepare_headers.py --files 300
    part systems "$py" bench/systems.py --systems tiny_aasist tiny_mamba aasist_l --clips 2 --repeats 1 --batch-size 2
    part serve "$py" bench/serve.py --model tiny --clients 4 --seconds 2 --rounds 1
    part onnx "$py" bench/onnx_vs_adf.py --models tiny --clips 4 --repeats 1
else
    part infer "$py" bench/infer.py --clips 8 --repeats 2 --pipeline w2v_small --startup w2v_small \
        --memory xlsr_2b
    if [ -f "$ckpt" ]; then
        part agreement "$py" "${agree[@]}" --ckpt "$ckpt" --agreement-sources
        part agreement-all "$py" "${agree[@]}" --ckpt "$ckpt" --agreement-split all
    else
        echo "note: no $ckpt (run the README's first command): agreement on random weights" | tee -a "$log"
        part agreement "$py" "${agree[@]}" --agreement-sources
    fi
    part train "$py" bench/train.py --steps 4 --compile --compare-convs
    part overhead "$py" bench/overhead.py
    part score "$py" bench/score.py
    part merge "$py" bench/merge.py
    part headers "$py" bench/prepare_headers.py
    part systems "$py" bench/systems.py --clips 4 --repeats 1 --batch-size 4 --threads 1
    part serve "$py" bench/serve.py --seconds 30 --threads 1
    part onnx "$py" bench/onnx_vs_adf.py
fi
if "$py" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    part gpu env PYTHON="$py" bash bench/gpu.sh
elif [ "$quick" = 1 ]; then
    part gpu-dry env PYTHON="$py" bash bench/gpu.sh --dry --no-compile --no-profile
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "bench/run.sh: failed: ${failed[*]} (details in $log)" | tee -a "$log"
    exit 1
fi
echo "bench/run.sh: done; $(grep -c . "$OUT/bench.jsonl") measurements in $OUT/bench.jsonl" | tee -a "$log"
