#!/usr/bin/env bash
# The main job: set up (once), then run the demo on the built-in SmolLM2-135M-Instruct model.
# Today the demo prepares the handbook data and fine-tunes with LoRA; the full tune -> evaluate ->
# align cycle takes over this script as its stages land.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
H=.venv/bin/harness
CONFIG=${1:-examples/demo/cycle.yaml}
shift || true
$H data prepare --config "$CONFIG" "$@"
$H sft --config "$CONFIG" "$@"
echo
echo "Demo finished. Look at:"
echo "  runs/demo/data/data_card.json    what went into training, and what was dropped and why"
echo "  runs/demo/sft/result.json        losses (validation before -> after), throughput, parameters"
echo "  runs/demo/sft/metrics.jsonl      the training curve"
echo "  runs/demo/sft/adapter/           the LoRA adapter (use it anywhere a model is accepted)"
