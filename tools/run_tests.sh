#!/usr/bin/env bash
# The README's test command: set up the environment when missing, then run the suite.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/setup_env.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest -q "$@"
