#!/usr/bin/env bash
# Install everything atk needs on a fresh machine: a virtual environment in
# ./.venv with atk-core, every package in plugins/, and the test tools.
# Safe to run again; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"atk needs Python 3.10 or newer; {sys.executable} is {sys.version.split()[0]}")
PY

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

packages=(-e ".[test,serve]")
for plugin in plugins/*/; do
    [ -f "$plugin/pyproject.toml" ] && packages+=(-e "$plugin")
done
# llama.cpp compiles from source; a native build crashes on some CPUs, so build portable.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
.venv/bin/python -m pip install --quiet --disable-pip-version-check "${packages[@]}"

# The browser tests of `atk serve` drive Debian's Chromium (Playwright's own browser
# downloads are not used).
if ! command -v chromium >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium
fi
