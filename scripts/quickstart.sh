#!/usr/bin/env bash
# Install atk (scripts/setup.sh), then make a training run's data on this machine:
# domain-expert over two bundled sample folders (it runs factual-qa, repvar, rag-data and
# correction over each, then assembles the pretraining text, a token-balanced SFT mix,
# the preference pairs and the Axolotl configs, each sized to its data), with both model roles on the embedded local model (llamacpp +
# SmolLM2-135M). No API key, no network beyond the package registries the install uses.
# At the end it shows what the run kept and dropped, and a few records of the mix.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

atk=$PWD/.venv/bin/atk
mkdir -p quickstart
cd quickstart
"$atk" init domain-expert domain-expert.yaml --samples --force
# Both roles on the embedded model, whatever the template says.
status=0
"$atk" run domain-expert.yaml --model small=llamacpp --model large=llamacpp --progress console || status=$?

echo
if [ "$status" -ne 0 ]; then
    if [ -f output/manifest.json ]; then
        echo "The quickstart's run kept nothing worth training on. Where its samples were dropped, and why:"
        echo
        "$atk" inspect output -n 0
        echo
        echo "Every dropped sample is in $PWD/output/failures.jsonl with its reason."
    else
        # A part that kept nothing fails the run; its own folder says why.
        last=$(ls -td output/parts/*/*/ 2>/dev/null | head -n 1 || true)
        if [ -n "$last" ] && [ -f "$last/manifest.json" ]; then
            echo "The part in $last kept nothing. Where its samples were dropped, and why:"
            echo
            "$atk" inspect "$last" -n 0
        fi
    fi
    exit "$status"
fi
echo "The training run's data is in $PWD/output:"
ls -1 output/pretraining/*.jsonl output/sft/*.jsonl output/preference/*.jsonl output/axolotl/*.yaml 2>/dev/null
echo
"$atk" inspect output -n 2
echo
# The stages in order, each from the one before; each config's first lines say how many
# optimizer steps an epoch takes, and whether the stage is too small to train.
stages=()
for stage in pretrain sft dpo; do
    [ -f "output/axolotl/$stage.yaml" ] && stages+=("axolotl train axolotl/$stage.yaml")
done
small=$(grep -l "TOO SMALL TO TRAIN" output/axolotl/*.yaml 2>/dev/null || true)
if [ -n "$small" ]; then
    echo "Too small to train on yet (a sample run over four short documents):" $small
    echo "Run it over your own documents; each config's first lines say how many steps an epoch takes."
    echo "Then train with Axolotl (on a machine with a GPU), from $PWD/output:"
else
    echo "Train on it with Axolotl (on a machine with a GPU), from $PWD/output:"
fi
joined=$(printf ' && %s' "${stages[@]}")
echo "  ${joined:4}"
