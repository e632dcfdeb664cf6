#!/usr/bin/env bash
# The README's test command: set up the environment when missing, then run the suite.
# Tests run in parallel processes (pytest-xdist, one per core) of one thread each:
# torch's default of one thread per core stalls every parallel region whenever
# another process holds a core (a shared CI machine), up to 40x slower on small
# operations, while single-threaded workers only share the cores. Any pytest
# option may follow (e.g. `-n 0` for one process, `-k name`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/setup_env.sh"
"$root/tools/setup_browser.sh"  # Chromium for the web page's test (skipped when present or not root)
cd "$root"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$root/.venv/bin/python" -m pytest -q -n "${ADF_TEST_WORKERS:-auto}" --durations=10 "$@"
