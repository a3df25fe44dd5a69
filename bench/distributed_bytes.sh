#!/usr/bin/env bash
# The distributed two-tower trainer on this host: the row exchange's bytes per step measured (rank 0's,
# mpirun -np N funnel train --report) against the model of bench/distributed_bytes_model.cpp, and training
# samples/s of N ranks x 1 thread against 1 process x N threads at the same global batch.
#   bench/distributed_bytes.sh [ranks=2] [batch per rank=256] [users=3000] [items=1000]
# Needs the release build (build/release, FUNNEL_BUILD_BENCH on, FUNNEL_MPI on).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
F="$ROOT/build/release/train/funnel"
MODEL="$ROOT/build/release/bench/funnel_distributed_bytes_model"
N="${1:-2}" B="${2:-256}" USERS="${3:-3000}" ITEMS="${4:-1000}"
DIM=16  # the config's default embedding_dim
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
"$F" generate --out "$WORK/data" --users "$USERS" --items "$ITEMS" >/dev/null
COMMON=(--data "$WORK/data/dataset.json" --epochs 1 --set drift_sample=0)
mpirun -np "$N" "$F" train "${COMMON[@]}" --batch-size "$B" --threads 1 --out "$WORK/n.funnel" --report "$WORK/n.json" >/dev/null
"$F" train "${COMMON[@]}" --batch-size $((B * N)) --threads "$N" --out "$WORK/1.funnel" --report "$WORK/1.json" >/dev/null
"$F" train "${COMMON[@]}" --batch-size $((B * N)) --threads 1 --out "$WORK/11.funnel" --report "$WORK/11.json" >/dev/null
"$MODEL" "$WORK/data/dataset.json" "$B" "$N" "$DIM" >"$WORK/model.json"
python3 - "$WORK" "$N" "$B" <<'PY'
import json, sys
work, n, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
run = json.load(open(f"{work}/n.json")); one = json.load(open(f"{work}/1.json")); single = json.load(open(f"{work}/11.json")); model = json.load(open(f"{work}/model.json"))
measured, predicted = run["exchange_bytes_per_step"], model["model_bytes_per_step"]
print(f"{n} ranks x batch {b}: row exchange {measured:,.0f} B/step/rank measured (rank 0, {run['steps']} steps), "
      f"{predicted:,.0f} modelled, ratio {measured / predicted:.3f}; dense all-reduce payload {run['allreduce_bytes_per_step']:,.0f} B/step")
for t in model["tables"]:
    print(f"  {t['table']:28s} E[unique rows] {t['expected_unique_rows']:8.1f}  {t['bytes_per_step']:10,.0f} B/step")
for name, r in ((f"{n} ranks x 1 thread", run), (f"1 process x {n} threads", one), ("1 process x 1 thread", single)):
    print(f"  {name:24s} {r['samples_per_second']:10,.0f} samples/s  test R@50 {r['test']['recall@50']:.4f}  (global batch {b * n}, 1 epoch)")
PY
