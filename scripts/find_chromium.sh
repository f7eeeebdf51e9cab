#!/usr/bin/env bash
# Find a Chromium for the browser tests, installing one when none is found, and write its path
# to the file named by $1. Runs first in `make test`, so a machine without a browser learns it
# in seconds, not after the whole suite.
#
# In order: $CONVSCOPE_CHROMIUM; a chromium on PATH; Debian's package (when we are root, or
# sudo needs no password); Playwright's own Chromium, downloaded into the project's .venv.
# When none works, it prints the commands to run and exits with 1.
set -uo pipefail
record=${1:?usage: find_chromium.sh FILE [VENV_PYTHON]}
python=${2:-.venv/bin/python}
browsers="$(pwd)/.venv/playwright-browsers"

found() {
  echo "$1" >"$record"
  echo "Chromium for the browser tests: $1"
  exit 0
}

if [ -n "${CONVSCOPE_CHROMIUM:-}" ]; then
  [ -x "$CONVSCOPE_CHROMIUM" ] && found "$CONVSCOPE_CHROMIUM"
  echo "CONVSCOPE_CHROMIUM=$CONVSCOPE_CHROMIUM is not an executable file" >&2
  exit 1
fi
for name in chromium chromium-browser; do
  path=$(command -v "$name" 2>/dev/null) && found "$path"
done

sudo=""
if [ "$(id -u)" != 0 ] && sudo -n true 2>/dev/null; then sudo="sudo -n"; fi
if { [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; } && command -v apt-get >/dev/null 2>&1; then
  echo "No Chromium found: installing Debian's package chromium"
  if timeout 600 $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive timeout 900 $sudo apt-get install -y -qq chromium >/dev/null; then
    path=$(command -v chromium 2>/dev/null) && found "$path"
  fi
  echo "apt-get could not install chromium" >&2
fi

if [ -x "$python" ]; then
  echo "No Chromium found: trying Playwright's own Chromium in $browsers"
  if PLAYWRIGHT_BROWSERS_PATH="$browsers" timeout 300 "$python" -m playwright install chromium; then
    path=$(PLAYWRIGHT_BROWSERS_PATH="$browsers" "$python" -c \
      "from playwright.sync_api import sync_playwright
with sync_playwright() as p: print(p.chromium.executable_path)" 2>/dev/null) &&
      [ -x "$path" ] && found "$path"
  fi
fi

cat >&2 <<EOF
No Chromium for the browser tests, and none could be installed here. Run one of
  sudo apt-get install chromium
  PLAYWRIGHT_BROWSERS_PATH=$browsers $python -m playwright install chromium
or point CONVSCOPE_CHROMIUM at a Chromium binary, then run make test again.
EOF
exit 1
