#!/usr/bin/env bash
# Fuzzes the model loader (tests/fuzz/fuzz_model_load.cpp, libFuzzer + AddressSanitizer + UBSan) for a
# bounded time, seeded with the golden model files and the earlier crashes. Exits non-zero on a crash,
# a leak, a timeout or an over-sized allocation, and leaves the input that caused it in
# build/fuzz/artifacts/ (turn it into a regression file in tests/data/fuzz-regressions/).
#   scripts/fuzz.sh [seconds]   # default 60; the test command runs 60, the documented long run is 600
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${1:-60}"

if [ ! -f build/fuzz/CMakeCache.txt ]; then
  cmake --preset fuzz >/dev/null
fi
cmake --build --preset fuzz

# The corpus lives under build/ and grows from run to run; the seeds are copied in every time.
CORPUS=build/fuzz/corpus
ARTIFACTS=build/fuzz/artifacts
mkdir -p "$CORPUS" "$ARTIFACTS"
cp tests/data/golden/*.funnel "$CORPUS/"
cp tests/data/fuzz-regressions/*.funnel "$CORPUS/" 2>/dev/null || true
# Room to grow a quarter beyond the largest golden file, in whole pages.
largest=$(stat -c %s tests/data/golden/*.funnel | sort -n | tail -1)
MAX_LEN=$(( (largest * 5 / 4 + 4095) / 4096 * 4096 ))

echo "==> fuzzing the model loader for ${DURATION}s (max_len ${MAX_LEN}; corpus $CORPUS)"
# A valid file this small needs a few MB at most: a bigger allocation means a size taken from the
# file without a limit, and libFuzzer reports it (-malloc_limit_mb) like a crash.
status=0
build/fuzz/tests/fuzz/fuzz_model_load "$CORPUS" \
  -max_total_time="$DURATION" -max_len="$MAX_LEN" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 \
  -artifact_prefix="$ARTIFACTS/" -print_final_stats=1 2> build/fuzz/last-run.log || status=$?
grep -E "^(#[0-9]+ +DONE|stat::)" build/fuzz/last-run.log || true
if [ "$status" -ne 0 ]; then
  tail -n 60 build/fuzz/last-run.log
  echo "==> the fuzzer failed (status $status); the input is in $ARTIFACTS/:" >&2
  ls -t "$ARTIFACTS" | head -5 >&2
  exit "$status"
fi
echo "==> no crash in ${DURATION}s (log: build/fuzz/last-run.log)"
