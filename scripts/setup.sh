#!/usr/bin/env bash
# Install what atk needs to run on a fresh machine: a virtual environment in
# ./.venv with atk-core (its web interface, and trafilatura to read saved web
# pages as articles) and every package in plugins/.
# The test tools and the browser the tests drive are scripts/test.sh's business.
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

packages=(-e ".[serve,articles]")
for plugin in plugins/*/; do
    [ -f "$plugin/pyproject.toml" ] && packages+=(-e "$plugin")
done
# llama.cpp compiles from source; a native build crashes on some CPUs, so build portable.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
if ! .venv/bin/python -c "import llama_cpp" >/dev/null 2>&1; then
    echo "atk setup: installing; llama-cpp-python (the embedded model's engine) compiles from"
    echo "atk setup: source the first time: about 5 minutes on 2 cores, then pip reuses the build."
fi
# pip is quiet; a line every 30 s says the install is still going (and for how long).
.venv/bin/python -m pip install --quiet --disable-pip-version-check "${packages[@]}" &
pip_pid=$!
started=$SECONDS
while kill -0 "$pip_pid" 2>/dev/null; do
    for _ in $(seq 30); do kill -0 "$pip_pid" 2>/dev/null && sleep 1; done
    if kill -0 "$pip_pid" 2>/dev/null; then
        echo "atk setup: still installing ($((SECONDS - started)) s so far)"
    fi
done
wait "$pip_pid"
