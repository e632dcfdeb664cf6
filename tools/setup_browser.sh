#!/usr/bin/env bash
# Chromium and its driver for the browser test of `adf serve`'s page
# (tests/test_serve_browser.py, which skips without them). Installs from Debian's
# packages only when missing, only as root and only where apt-get exists; never fails
# the test run (the test then skips and says why). ADF_NO_BROWSER=1 skips this.
set -uo pipefail
if [ "${ADF_NO_BROWSER:-0}" = 1 ] || { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "[setup_browser] chromium/chromedriver missing (not root or no apt-get): the browser test will skip" >&2
  exit 0
fi
echo "[setup_browser] installing chromium and chromium-driver (Debian packages)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; } >/tmp/adf-setup-browser.log 2>&1; then
  echo "[setup_browser] apt-get failed (log: /tmp/adf-setup-browser.log): the browser test will skip" >&2
fi
exit 0
