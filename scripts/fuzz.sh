#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz/, AddressSanitizer + UBSan) for a bounded time each:
#   fuzz_model_load      the model loader, seeded with the golden model files;
#   fuzz_dataset_reader  the trainer's dataset reader (descriptions and their delimited/JSON/DIEN files);
#   fuzz_request_json    the CLI's JSON requests (--user features, update-catalogue's items), served by the SDK.
# Each is seeded with tests/data/fuzz-regressions/<fuzzer>/ (hand-made seeds and every input that once
# failed), which it runs first. Exits non-zero on a crash, a leak, a timeout or an over-sized allocation, and
# leaves the input that caused it in build/fuzz/artifacts/<fuzzer>/ (copy it into
# tests/data/fuzz-regressions/<fuzzer>/ under a name saying what it did, and fix the code).
#   scripts/fuzz.sh [seconds] [fuzzer ...]   # seconds per fuzzer, default 25 (the test command: 25 each);
#                                            # the documented long run is scripts/fuzz.sh 600 (10 min each)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-25}"
shift || true
FUZZERS=("$@")
[ ${#FUZZERS[@]} -gt 0 ] || FUZZERS=(fuzz_model_load fuzz_dataset_reader fuzz_request_json)

if [ ! -f build/fuzz/CMakeCache.txt ]; then
  cmake --preset fuzz >/dev/null
fi
cmake --build --preset fuzz

failed=0
for fuzzer in "${FUZZERS[@]}"; do
  # The corpus lives under build/ and grows from run to run; the seeds are copied in every time.
  CORPUS=build/fuzz/corpus/$fuzzer
  ARTIFACTS=build/fuzz/artifacts/$fuzzer
  LOG=build/fuzz/$fuzzer.log
  mkdir -p "$CORPUS" "$ARTIFACTS"
  cp tests/data/fuzz-regressions/"$fuzzer"/* "$CORPUS/" 2>/dev/null || true
  case "$fuzzer" in
    fuzz_model_load)
      cp tests/data/golden/*.funnel "$CORPUS/"
      # Room to grow a quarter beyond the largest golden file, in whole pages.
      largest=$(stat -c %s tests/data/golden/*.funnel | sort -n | tail -1)
      MAX_LEN=$(( (largest * 5 / 4 + 4095) / 4096 * 4096 )) ;;
    fuzz_dataset_reader) MAX_LEN=16384 ;;
    fuzz_request_json) MAX_LEN=4096 ;;
    *) echo "unknown fuzzer '$fuzzer' (fuzz_model_load, fuzz_dataset_reader, fuzz_request_json)" >&2; exit 2 ;;
  esac
  echo "==> fuzzing $fuzzer for ${DURATION}s (max_len $MAX_LEN; corpus $CORPUS)"
  # A valid input this small needs a few MB at most: a bigger allocation means a size taken from the
  # input without a limit, and libFuzzer reports it (-malloc_limit_mb) like a crash.
  status=0
  build/fuzz/tests/fuzz/"$fuzzer" "$CORPUS" \
    -max_total_time="$DURATION" -max_len="$MAX_LEN" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 \
    -artifact_prefix="$ARTIFACTS/" -print_final_stats=1 2> "$LOG" || status=$?
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec)" "$LOG" || true
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$LOG"
    echo "==> $fuzzer failed (status $status); the input is in $ARTIFACTS/:" >&2
    ls -t "$ARTIFACTS" | head -5 >&2
    failed=1
  else
    echo "==> $fuzzer: no crash in ${DURATION}s (log: $LOG)"
  fi
done
exit "$failed"
