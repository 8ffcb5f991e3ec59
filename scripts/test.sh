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
    echo "installing Debian's chromium for the browser tests (a minute or two)..."
    # Only what it needs to run headless, and one font: the recommended desktop services
    # (upower, udev, a notification daemon, printer setup) would add 100 packages.
    log="$(mktemp)"
    if ! { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends chromium fonts-liberation; } >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        echo "could not install chromium (see above)" >&2
        exit 1
    fi
    rm -f "$log"
fi
# Every test: the fast lane and the slow one (plain `pytest` runs only the fast lane).
exec .venv/bin/python -m pytest -m "slow or not slow" "$@"
