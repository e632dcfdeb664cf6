#!/usr/bin/env bash
# Create (or reuse) the pinned environment in .venv at the repository root.
# Idempotent: a stamp file records the hash of the requirement files, so a
# second call costs nothing unless the pins changed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.adf-env-stamp"
want=$(cat "$root/requirements.txt" "$root/requirements-dev.txt" "$root/setup.py" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi
# The CUDA build of torch that PyPI serves makes the environment about 6.1 GB;
# a disk that fills half-way leaves a broken venv and a bare pip OSError, so
# say up front what is missing (ADF_MIN_FREE_GB=0 skips the check).
need_gb=${ADF_MIN_FREE_GB:-7}
free_kb=$(df -Pk "$root" | awk 'NR==2 {print $4}')
if [ "$need_gb" -gt 0 ] && [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
  echo "[setup_env] error: $venv needs about ${need_gb} GB free on the disk of $root;" \
       "only $((free_kb / 1024)) MB are free (set ADF_MIN_FREE_GB=0 to try anyway)" >&2
  exit 1
fi
echo "[setup_env] creating the environment in $venv (about 6 GB, a few minutes)" >&2
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -r "$root/requirements-dev.txt"
"$venv/bin/python" -m pip install -q --no-deps -e "$root"
echo "$want" > "$stamp"
echo "[setup_env] done" >&2
