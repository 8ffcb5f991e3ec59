#!/usr/bin/env bash
# Install everything (scripts/setup.sh, then the test tools and Debian's Chromium for
# the web interface's browser tests), then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,serve]"

# The browser tests of `atk serve` drive Debian's Chromium (Playwright's own browser
# downloads are not used).
if ! command -v chromium >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium
fi
# Every test: the fast lane and the slow one (plain `pytest` runs only the fast lane).
exec .venv/bin/python -m pytest -m "slow or not slow" "$@"
