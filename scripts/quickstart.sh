#!/usr/bin/env bash
# Install everything (scripts/setup.sh), then show what atk can run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/atk list
