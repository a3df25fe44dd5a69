#!/usr/bin/env bash
# The main job: train on the built-in dataset, export .funnel files, and recommend (retrieve, then rank) with the
# native SDK and with the WASM module in Node; then the whole funnel (retrieval, AutoFAS pre-ranking, CAN
# ranking) trained by one command into one file, what each stage adds, and its cascade natively and in WASM.
# Installs whatever is missing first. With --serve: the browser demo instead (wasm/demo/serve.mjs trains its
# three-stage funnel on first start, on MovieLens 100K where ../shared/data/ml-100k exists and on the built-in
# dataset, and serves the page on http://127.0.0.1:8080/).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$FUNNEL_ROOT"

funnel_build release
funnel_build wasm
if [ "${1:-}" = "--serve" ]; then
  [ -d node_modules/uplot ] || npm install --no-audit --no-fund  # uPlot, for the charts page
  exec node wasm/demo/serve.mjs
fi
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

echo "==> training the ranking stage (CAN) on the same data"
$FUNNEL train-ranker --data "$OUT/data/dataset.json" --out "$OUT/ranker.funnel" --metrics-log "$OUT/ranker-metrics.jsonl"

# The user's 20 most recent interactions are the behaviour sequence; the 20 retrieved items the candidates.
BEHAVIOURS=$(grep '^u42,' "$OUT/data/interactions.csv" | sort -t, -k3,3n | tail -20 | cut -d, -f2 | paste -sd, -)
CANDIDATES=$($FUNNEL recommend --model "$OUT/model.funnel" --user "$USER_JSON" -k 20 --exclude "$BEHAVIOURS" --json |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).recommendations.map(r=>r.key).join(",")))')
echo "==> ranking u42's 20 retrieved items by click probability, native SDK"
$FUNNEL rank --model "$OUT/ranker.funnel" --behaviours "$BEHAVIOURS" --candidates "$CANDIDATES"

echo "==> the same ranking through the WASM module in Node"
node wasm/examples/rank.mjs "$OUT/ranker.funnel" '{}' "$BEHAVIOURS" "$CANDIDATES"

echo "==> the whole funnel from one command: retrieval, the AutoFAS pre-ranking student and the CAN ranker in one file"
$FUNNEL train-funnel --data "$OUT/data/dataset.json" --out "$OUT/funnel.funnel" --set retrieval.epochs=10 --set ranking.epochs=2 \
  --set 'pre_ranking.operators=[0,32,64,128]' --metrics-log "$OUT/funnel-metrics.jsonl"

echo "==> what each stage adds to the final top 10 (test split, through the SDK)"
$FUNNEL eval --data "$OUT/data/dataset.json" --model "$OUT/funnel.funnel" --retrieve-k 100,200 --prerank-k 50

echo "==> u42's cascade (retrieve 200, pre-rank to 50, rank to 10), native SDK"
$FUNNEL recommend --model "$OUT/funnel.funnel" --user "$USER_JSON" -k 10 --retrieve-k 200 --prerank-k 50 \
  --behaviours "$BEHAVIOURS" --exclude "$BEHAVIOURS"

echo "==> the same cascade through the WASM module in Node"
node wasm/examples/cascade.mjs "$OUT/funnel.funnel" "$USER_JSON" "$BEHAVIOURS" 10 200 50

# Python: the module is built by pip, a second compile of the SDK and the trainer (position-independent), so
# the demo uses it only where scripts/test.sh (or the README's commands) installed it in build/python-venv.
if [ -x build/python-venv/bin/python ] && build/python-venv/bin/python -c "import funnel" 2>/dev/null; then
  echo "==> u42's top 10 and cascade from Python (bindings/python, the funnel module)"
  build/python-venv/bin/python - "$OUT/model.funnel" "$OUT/funnel.funnel" "$USER_JSON" "$BEHAVIOURS" <<'PY'
import json, sys
import funnel
model, whole, user, behaviours = funnel.Model.load(sys.argv[1]), funnel.Model.load(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4].split(",")
print(model.retrieve(user, k=10).to_frame().to_string(index=False))
result = whole.recommend(user, k=10, retrieve_k=200, prerank_k=50, behaviours=behaviours, exclude=behaviours)
print(list(result.keys), {stage: round(ms, 3) for stage, ms in result.timings().items()})
PY
else
  echo "==> Python: not installed in build/python-venv; docs/python.md installs it (pip install --no-build-isolation ./bindings/python)"
fi
echo "==> the browser demo: ./scripts/demo.sh --serve, then open http://127.0.0.1:8080/"
