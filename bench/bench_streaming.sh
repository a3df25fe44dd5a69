#!/usr/bin/env bash
# Streaming vs in-memory two-tower training (docs/studies/streaming.md): peak RSS and training samples/s on
# generated sets of 1M, 10M and 100M interactions whose users (100K) and items (10K) stay the same, so the
# tables, parameters and per-user holdouts are the same at every size and only the interactions grow.
#
#   bench/bench_streaming.sh                       # SIZES="1 10 100" (millions of interactions)
#   SIZES="1 10" RUN_SECONDS=300 bench/bench_streaming.sh
#
# For each size: generate (timed), prepare (peak RSS), then train one epoch in memory (sizes <= MEMORY_MAX,
# default 10: 100M in memory needs well over the 8 GiB this shared machine allows) and streamed, each under
# a watch of the process's peak RSS (VmHWM). samples/s is the training loop's alone (the report's, without
# evaluation). RUN_SECONDS > 0 stops each training run after that many seconds: then samples/s is the last
# progress line's (the run's epoch so far, printed under `script` for a terminal) and the peak RSS is that of
# the part that ran (the evaluation at the epoch's end, bounded by users and items, is then left out).
# Writes $WORK/results.jsonl and prints a markdown table. The 100M files are deleted after their runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
F=${FUNNEL_BIN:-$PWD/build/release/train/funnel}
WORK=${WORK:-/tmp/funnel-streaming-bench}
SIZES=${SIZES:-"1 10 100"}
MEMORY_MAX=${MEMORY_MAX:-10}
RUN_SECONDS=${RUN_SECONDS:-0}
mkdir -p "$WORK"
: > "$WORK/results.jsonl"
# Small towers, one epoch, two threads: the data path's cost shows, not the model's.
cat > "$WORK/config.json" <<'EOF'
{"embedding_dim": 16, "hidden": [32], "output_dim": 16, "batch_size": 1024, "epochs": 1, "threads": 2, "drift_sample": 0, "seed": 1}
EOF
echo "uptime: $(uptime)"

peak_kb() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }

# train <mode> <data> <tag>: one training run; appends a JSON line.
train() {
  local mode=$1 data=$2 tag=$3 log="$WORK/$3.log" timing="$WORK/$3.time" report="$WORK/$3.report.json"
  rm -f "$report"
  local command="$F train --data $data --config $WORK/config.json --out $WORK/$tag.funnel --report $report"
  local status=0 peak=0 hwm runner pid
  # The peak RSS is the training process's own high-water mark (VmHWM, what getrusage's ru_maxrss reports),
  # read every half second while it runs: a run stopped by RUN_SECONDS is never reaped by a time(1) above it.
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
  for pid in $(pgrep -f -- "--report $report" || true); do kill "$pid" 2>/dev/null || true; done  # nothing of a stopped run outlives it
  echo "Maximum resident set size (kbytes): $peak" > "$timing"
  local rate complete=true
  if [ -f "$report" ]; then
    rate=$(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['samples_per_second']))" "$report")
  else
    complete=false
    rate=$(tr '\r' '\n' < "$log" | sed -n 's/.* \([0-9]*\) samples\/s .*/\1/p' | tail -1)
  fi
  echo "{\"size_m\": $size, \"mode\": \"$mode\", \"peak_rss_kb\": $(peak_kb "$timing"), \"samples_per_second\": ${rate:-null}, \"complete_epoch\": $complete, \"exit\": $status}" |
    tee -a "$WORK/results.jsonl"
}

for size in $SIZES; do
  dir="$WORK/g$size"
  rm -rf "$dir" "$dir.prepared"
  start=$(date +%s.%N)
  "$F" generate --out "$dir" --users 100000 --items 10000 --mean-interactions $((size * 10)) --seed 1 > /dev/null
  gen_seconds=$(python3 -c "import time,sys; print(round(time.time() - float(sys.argv[1]), 1))" "$start")
  rows=$(($(wc -l < "$dir/interactions.csv") - 1))
  /usr/bin/time -v -o "$WORK/prepare$size.time" "$F" prepare "$dir/dataset.json" --out "$dir.prepared" > "$WORK/prepare$size.log" 2>&1
  echo "{\"size_m\": $size, \"mode\": \"data\", \"interactions\": $rows, \"generate_seconds\": $gen_seconds, \"csv_bytes\": $(stat -c %s "$dir/interactions.csv"), \"prepared_bytes\": $(du -sb "$dir.prepared" | cut -f1), \"prepare_peak_rss_kb\": $(peak_kb "$WORK/prepare$size.time"), \"prepare_wall\": \"$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/prepare$size.time")\"}" |
    tee -a "$WORK/results.jsonl"
  if [ "$size" -le "$MEMORY_MAX" ]; then train memory "$dir/dataset.json" "memory$size"; fi
  train stream "$dir.prepared" "stream$size"
  if [ "$size" -ge 100 ]; then rm -rf "$dir" "$dir.prepared"; fi
done

python3 - "$WORK/results.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| interactions | mode | peak RSS (MiB) | samples/s | whole epoch |")
print("| --- | --- | --- | --- | --- |")
for r in rows:
    if r["mode"] == "data":
        print(f"| {r['interactions']:,} | generate {r['generate_seconds']} s, prepare {r['prepare_wall']} ({r['prepare_peak_rss_kb'] / 1024:.0f} MiB), "
              f"CSV {r['csv_bytes'] / 2**20:.0f} MiB, prepared {r['prepared_bytes'] / 2**20:.0f} MiB | | | |")
    else:
        print(f"| {r['size_m']}M | {r['mode']} | {r['peak_rss_kb'] / 1024:.0f} | {r['samples_per_second']} | {r['complete_epoch']} |")
EOF
