#!/usr/bin/env bash
# Streamed ranker training (train-ranker on a `funnel prepare --ctr` folder; docs/studies/streaming.md "The
# ranker"): peak RSS and samples/s on generated sets of 1M and 10M interactions whose users (100K) and items
# (10K) stay the same, so tables, parameters and the validation/test instances (one positive per user) are the
# same at every size and only the training instances grow. bench_streaming.sh's sibling for the CTR path.
#
#   bench/bench_ranker_streaming.sh                      # SIZES="1 10", RUN_SECONDS=60
#   SIZES="1" RUN_SECONDS=0 bench/bench_ranker_streaming.sh   # whole epochs
#
# For each size: generate, prepare --ctr (max_history 20, 1 negative: 96-byte rows; timed, peak RSS), then
# train-ranker streamed (and in memory at sizes <= MEMORY_MAX, default 1), each under a watch of the process's
# peak RSS (VmHWM, read every half second). RUN_SECONDS > 0 stops each run after that many seconds (SIGINT):
# samples/s is then the last progress line's and the peak RSS that of the part that ran (start-up, the data,
# the epoch so far; not the evaluation at the epoch's end). Writes $WORK/results.jsonl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
F=${FUNNEL_BIN:-$PWD/build/release/train/funnel}
WORK=${WORK:-/tmp/funnel-ranker-streaming-bench}
SIZES=${SIZES:-"1 10"}
MEMORY_MAX=${MEMORY_MAX:-1}
RUN_SECONDS=${RUN_SECONDS:-60}
mkdir -p "$WORK"
: > "$WORK/results.jsonl"
# A small CAN, one epoch, two threads: the data path's cost shows, not the model's.
cat > "$WORK/config.json" <<'JSON'
{"model": "can", "max_history": 20, "negatives": 1, "embedding_dim": 8, "hidden": [32, 16], "coaction_feed_dim": 8,
 "coaction_layers": [4, 2], "batch_size": 1024, "epochs": 1, "threads": 2, "seed": 1}
JSON
echo "uptime: $(uptime)"

train() {
  local mode=$1 data=$2 tag=$3 log="$WORK/$3.log" report="$WORK/$3.report.json"
  rm -f "$report"
  local command="$F train-ranker --data $data --config $WORK/config.json --out $WORK/$tag.funnel --report $report"
  local status=0 peak=0 hwm runner pid
  if [ "$RUN_SECONDS" -gt 0 ]; then
    timeout -s INT "$RUN_SECONDS" script -qfec "$command" /dev/null > "$log" 2>&1 &
  else
    $command > "$log" 2>&1 &
  fi
  runner=$!
  while kill -0 "$runner" 2>/dev/null; do
    for pid in $(pgrep -f -- "--report $report" || true); do
      hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      if [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ]; then peak=$hwm; fi
    done
    sleep 0.5
  done
  wait "$runner" || status=$?
  for pid in $(pgrep -f -- "--report $report" || true); do kill "$pid" 2>/dev/null || true; done
  local rate complete=true
  if [ -f "$report" ]; then
    rate=$(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['samples_per_second']))" "$report")
  else
    complete=false
    rate=$(tr '\r' '\n' < "$log" | sed -n 's/.* \([0-9]*\) samples\/s.*/\1/p' | tail -1)
  fi
  echo "{\"size_m\": $size, \"mode\": \"$mode\", \"peak_rss_kb\": $peak, \"samples_per_second\": ${rate:-null}, \"complete_epoch\": $complete, \"exit\": $status}" |
    tee -a "$WORK/results.jsonl"
}

for size in $SIZES; do
  dir="$WORK/g$size"
  rm -rf "$dir" "$dir.prepared"
  "$F" generate --out "$dir" --users 100000 --items 10000 --mean-interactions $((size * 10)) --seed 1 > /dev/null
  rows=$(($(wc -l < "$dir/interactions.csv") - 1))
  /usr/bin/time -v -o "$WORK/prepare$size.time" "$F" prepare "$dir/dataset.json" --out "$dir.prepared" --ctr --ctr-max-history 20 \
    > "$WORK/prepare$size.log" 2>&1
  ctr_rows=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ctr']['train_rows'])" "$dir.prepared/manifest.json")
  echo "{\"size_m\": $size, \"mode\": \"data\", \"interactions\": $rows, \"ctr_train_rows\": $ctr_rows, \"prepared_bytes\": $(du -sb "$dir.prepared" | cut -f1), \"prepare_peak_rss_kb\": $(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/prepare$size.time"), \"prepare_wall\": \"$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/prepare$size.time")\"}" |
    tee -a "$WORK/results.jsonl"
  if [ "$size" -le "$MEMORY_MAX" ]; then train memory "$dir/dataset.json" "memory$size"; fi
  train stream "$dir.prepared" "stream$size"
done
