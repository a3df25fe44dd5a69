#!/usr/bin/env bash
# Writes the golden model files in tests/data/golden/: small models trained by Funnel's own trainer on
# its built-in synthetic dataset (tiny settings, one epoch, fixed seeds, one thread), and expected.json,
# what the CLI answered for a few requests when they were made. The tests load every file and must give
# those answers, so a change to the format or to its meaning shows up as a failing test.
# Files that exist are kept (they are the old files that must keep loading): run it when a new kind of file
# is added or the format version is raised, and it writes only the missing files, then records every file's
# answers again (the old files' answers must come out unchanged: check with git diff). Every format version
# has golden files (docs/model-file.md, "Format versions"): the files without a suffix are format 2, those
# named *-v3.funnel format 3 (checksums).
#   scripts/make_golden.sh            # builds the trainer in build/golden (not build/release)
#   FUNNEL_GOLDEN_BUILD=build/x scripts/make_golden.sh   # another build folder
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD=${FUNNEL_GOLDEN_BUILD:-build/golden}
OUT=tests/data/golden

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake --preset release -B "$BUILD" -DFUNNEL_BUILD_BENCH=OFF -DFUNNEL_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$BUILD" --target funnel make_funnel_golden -j2
F="$ROOT/$BUILD/train/funnel"

DATA="$BUILD/golden-data"
rm -rf "$DATA"
"$F" generate --out "$DATA" --users 60 --items 40 --seed 7 >/dev/null
TINY=(--epochs 1 --seed 7 --threads 1 --batch-size 64 --set embedding_dim=4 --set 'hidden=[8]')
RANKER=("${TINY[@]}" --set coaction_feed_dim=4 --set 'coaction_layers=[4,2]' --set coaction_orders=2 --set max_history=10
        --set 'user_features=["age","region","device"]')

mkdir -p "$OUT"
# make FILE COMMAND...: runs the trainer command that writes $OUT/FILE, unless that file exists.
make() {
  local file="$1"
  shift
  if [ -f "$OUT/$file" ]; then echo "kept $file"; return; fi
  "$F" "$@" --out "$OUT/$file" >/dev/null 2>&1
  echo "made $file"
}
# Retrieval: two towers over every feature kind (a vocabulary, boundaries, a dense and a multi-valued feature).
make retrieval.funnel train --data "$DATA/dataset.json" "${TINY[@]}" --set output_dim=4
# The same towers with the catalogue in half precision, and in int8 with exact rows for re-scoring.
make retrieval-f16.funnel train --data "$DATA/dataset.json" "${TINY[@]}" --set output_dim=4 --set catalogue_precision=f16
make retrieval-int8.funnel train --data "$DATA/dataset.json" "${TINY[@]}" --set output_dim=4 --set catalogue_precision=int8
# Ranking, CAN with co-action pairs over the behaviour sequence and a user feature.
make ranking-can.funnel train-ranker --data "$DATA/dataset.json" "${RANKER[@]}" \
  --set 'coaction=["item_id:item_id","category:category","item_id:region"]'
# Ranking, CAN with every independence level, biases and mean pooling: the other optional fields.
make ranking-can-independent.funnel train-ranker --data "$DATA/dataset.json" "${RANKER[@]}" \
  --set 'coaction=["item_id:item_id","category:category","category:region"]' --set coaction_bias=true \
  --set combination_independence=true --set order_independence=true --set pooling=mean
# Retrieval, pre-ranking (a DNN student on its own subset and order of the features) and ranking (CAN) in
# one file. The CLI writes one stage per file, so tests/tools/make_funnel_golden.cpp writes this one through
# the trainer's export_funnel, from models initialised with fixed seeds (not trained).
if [ -f "$OUT/three-stages.funnel" ]; then
  echo "kept three-stages.funnel"
else
  "$ROOT/$BUILD/tests/tools/make_funnel_golden" --data "$DATA/dataset.json" --out "$OUT/three-stages.funnel"
  echo "made three-stages.funnel"
fi

# Format 3 (checksums): the same three stages from the same seeds, so they must answer as three-stages.funnel
# does, and an int8 catalogue (its scales and exact rows are tensors with checksums of their own).
if [ -f "$OUT/three-stages-v3.funnel" ]; then
  echo "kept three-stages-v3.funnel"
else
  "$ROOT/$BUILD/tests/tools/make_funnel_golden" --data "$DATA/dataset.json" --out "$OUT/three-stages-v3.funnel"
  echo "made three-stages-v3.funnel"
fi
make retrieval-int8-v3.funnel train --data "$DATA/dataset.json" "${TINY[@]}" --set output_dim=4 --set catalogue_precision=int8

# The whole funnel trained by one command (train-funnel): retrieval, the CAN ranker and the AutoFAS student
# searched on it, joined into one file by the stage-file bundle. The latency table is measured here on a
# small grid of widths (a table only steers the search; the file is what is frozen).
if [ -f "$OUT/three-stages-trained.funnel" ]; then
  echo "kept three-stages-trained.funnel"
else
  "$F" bench-layers --out "$BUILD/golden-latency.json" --inputs 4,8,16,32,64 --outputs 1,4,8 --repeats 3 >/dev/null
  "$F" train-funnel --data "$DATA/dataset.json" --out "$OUT/three-stages-trained.funnel" --work "$BUILD/golden-stages" \
    --epochs 1 --seed 7 --threads 1 --batch-size 64 \
    --set retrieval.embedding_dim=4 --set 'retrieval.hidden=[8]' --set retrieval.output_dim=4 \
    --set ranking.embedding_dim=4 --set 'ranking.hidden=[8]' --set ranking.coaction_feed_dim=4 --set 'ranking.coaction_layers=[4,2]' \
    --set ranking.coaction_orders=2 --set ranking.max_history=10 --set 'ranking.user_features=["age","region","device"]' \
    --set 'pre_ranking.operators=[0,4,8]' --set pre_ranking.latency_table="$BUILD/golden-latency.json" >/dev/null 2>&1
  echo "made three-stages-trained.funnel"
fi

# The answers, with the timings taken out so that the file only changes when the answers do.
untimed() { sed -E 's/"(retrieve|rank|prerank)_us":[-+.0-9eE]+,?//; s/,"stages":\[[^]]*\]//; s/"ms":[-+.0-9eE]+,?//; s/,}/}/'; }
USERS=('{"user_id":"u3","age":41,"region":"r2","device":"ios"}'
       '{"user_id":"u17","age":"23","region":"r0","device":"android"}'
       '{"user_id":"someone new","age":70,"region":"r99","device":"web"}')
{
  echo '{"retrieve": ['
  sep=""
  for model in retrieval.funnel retrieval-f16.funnel retrieval-int8.funnel three-stages-trained.funnel retrieval-int8-v3.funnel; do
    for user in "${USERS[@]}"; do
      answer=$("$F" recommend --model "$OUT/$model" --user "$user" -k 10 --exclude i1,i2 --skip pre_ranking,ranking --json | untimed)
      printf '%s  {"model": "%s", "user": %s, "k": 10, "exclude": ["i1", "i2"],\n   "answer": %s}' "$sep" "$model" "$user" "$answer"
      sep=$',\n'
    done
  done
  echo
  echo '], "rank": ['
  sep=""
  for model in ranking-can.funnel ranking-can-independent.funnel three-stages-trained.funnel three-stages-v3.funnel; do
    for user in "${USERS[@]}"; do
      answer=$("$F" rank --model "$OUT/$model" --user "$user" --behaviours i3,i8,i21,i8,unseen --candidates i5,i9,i0,i39 --json | untimed)
      printf '%s  {"model": "%s", "user": %s, "behaviours": ["i3", "i8", "i21", "i8", "unseen"], "candidates": ["i5", "i9", "i0", "i39"],\n   "answer": %s}' \
        "$sep" "$model" "$user" "$answer"
      sep=$',\n'
    done
  done
  echo
  echo '], "prerank": ['
  sep=""
  for model in three-stages.funnel three-stages-trained.funnel three-stages-v3.funnel; do
    for user in "${USERS[@]}"; do
      answer=$("$F" prerank --model "$OUT/$model" --user "$user" --behaviours i3,i8,i21,i8,unseen --candidates i5,i9,i0,i39 --json | untimed)
      printf '%s  {"model": "%s", "user": %s, "behaviours": ["i3", "i8", "i21", "i8", "unseen"], "candidates": ["i5", "i9", "i0", "i39"],\n   "answer": %s}' \
        "$sep" "$model" "$user" "$answer"
      sep=$',\n'
    done
  done
  echo
  echo '], "cascade": ['
  sep=""
  for model in three-stages.funnel three-stages-trained.funnel three-stages-v3.funnel; do
    for user in "${USERS[@]}"; do
      answer=$("$F" recommend --model "$OUT/$model" --user "$user" -k 5 --retrieve-k 20 --prerank-k 10 --behaviours i3,i8,i21 \
        --exclude i1,i2 --json | untimed)
      printf '%s  {"model": "%s", "user": %s, "k": 5, "retrieve_k": 20, "prerank_k": 10, "behaviours": ["i3", "i8", "i21"], "exclude": ["i1", "i2"],\n   "answer": %s}' \
        "$sep" "$model" "$user" "$answer"
      sep=$',\n'
    done
  done
  echo
  echo ']}'
} > "$OUT/expected.json"
ls -l "$OUT"
