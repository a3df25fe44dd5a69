#!/usr/bin/env bash
# The main job: train on the built-in dataset, export one .funnel file, and recommend from it with the
# native SDK and with the WASM module in Node. Installs whatever is missing first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$FUNNEL_ROOT"

funnel_build release
funnel_build wasm
FUNNEL=build/release/train/funnel
OUT=build/demo
mkdir -p "$OUT"

echo "==> generating the built-in synthetic dataset"
$FUNNEL generate --out "$OUT/data"

echo "==> training a two-tower model"
$FUNNEL train --data "$OUT/data/dataset.json" --out "$OUT/model.funnel" --epochs 10 --metrics-log "$OUT/metrics.jsonl"

echo "==> what the model file holds"
$FUNNEL inspect "$OUT/model.funnel"

USER_JSON='{"user_id": "u42", "age": 31, "region": "r3", "device": "ios"}'
echo "==> top 10 for $USER_JSON, native SDK"
$FUNNEL recommend --model "$OUT/model.funnel" --user "$USER_JSON" -k 10

echo "==> the same request through the WASM module in Node"
node wasm/examples/recommend.mjs "$OUT/model.funnel" "$USER_JSON" 10
