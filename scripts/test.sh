#!/usr/bin/env bash
# Every test: C++ tests in the release and the sanitizer builds, the Python module's tests (pytest), the SDK's thread test under
# ThreadSanitizer, the SDK's tests on 64-bit ARM under qemu, 75 s of fuzzing (loader, dataset reader, JSON requests), the
# WASM module's Node tests (parity with the native SDK). Installs whatever is missing first. Tests on
# real data read ../shared/data and skip, with a message, where it is absent. The last line adds up every
# runner's passed, failed and skipped tests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$FUNNEL_ROOT"
start=$(date +%s)

# Each step's wall time, printed when it ends and listed again before the counts (docs/build-and-test.md "Times").
STEP_NAME="" STEP_START=$start STEP_TIMES=""
step() {
  local now
  now=$(date +%s)
  if [ -n "$STEP_NAME" ]; then
    echo "==> $((now - STEP_START)) s: $STEP_NAME"
    STEP_TIMES+="$(printf '%6d s  %s' $((now - STEP_START)) "$STEP_NAME")"$'\n'
  fi
  STEP_NAME="$1" STEP_START=$now
}

# Every runner's counts, added up for the last line: a test that could not run here (no real data, a kernel
# set this CPU lacks, no Chromium) is counted as skipped, never as passed.
PASSED=0 FAILED=0 SKIPPED=0
RUN_LOG=$(mktemp)
trap 'rm -f "$RUN_LOG"' EXIT
# ctest with its output shown; its summary's counts (skipped tests are listed as "(Skipped)") added up.
counted_ctest() {
  ctest "$@" 2>&1 | tee "$RUN_LOG"
  local total failed skipped
  total=$(sed -n 's/.* tests failed out of \([0-9]*\).*/\1/p' "$RUN_LOG" | tail -1)
  failed=$(sed -n 's/.* \([0-9]*\) tests failed out of .*/\1/p' "$RUN_LOG" | tail -1)
  skipped=$(grep -c '(Skipped)$' "$RUN_LOG" || true)
  total=${total:-0} failed=${failed:-0}
  PASSED=$((PASSED + total - failed - skipped)) FAILED=$((FAILED + failed)) SKIPPED=$((SKIPPED + skipped))
}

step "release build"
funnel_build release
step "C++ tests (release)"
echo "==> C++ tests (release)"
counted_ctest --preset release -j2

step "Python module: build and pytest"
echo "==> Python module (bindings/python): pip install into a venv over Debian's Python, then pytest (tests/python)"
python_venv=build/python-venv
[ -x "$python_venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$python_venv"
"$python_venv/bin/pip" install --quiet --no-build-isolation --no-index ./bindings/python
"$python_venv/bin/python" -m pytest tests/python -q -rs -p no:cacheprovider 2>&1 | tee "$RUN_LOG"
pytest_count() { local n; n=$(tail -1 "$RUN_LOG" | grep -o "[0-9]* $1" | cut -d' ' -f1); echo "${n:-0}"; }
PASSED=$((PASSED + $(pytest_count passed))) FAILED=$((FAILED + $(pytest_count failed) + $(pytest_count error)))
SKIPPED=$((SKIPPED + $(pytest_count skipped)))

echo "==> kernels: tested above, every kernel on every kernel set of the build against scalar references (tests/sdk/test_kernels.cpp); a set this CPU lacks is listed as Skipped"

step "sanitizer build"
funnel_build asan
step "C++ tests (sanitizers)"
echo "==> C++ tests (AddressSanitizer + UndefinedBehaviorSanitizer; the real-data training run and the CBNS learning test, 32 s here, are left to release)"
counted_ctest --preset asan -j2 -E "ml-100k|Learning: CBNS"

step "ThreadSanitizer build"
funnel_build tsan
step "SDK tests (ThreadSanitizer)"
echo "==> SDK tests under ThreadSanitizer (16 threads sharing models, the C ABI; no trainer, no OpenMP)"
counted_ctest --preset tsan -j2

step "aarch64 build"
funnel_build aarch64
step "SDK tests (aarch64, qemu)"
echo "==> SDK tests on 64-bit ARM (NEON kernels; cross-compiled, run under qemu-aarch64; no trainer)"
counted_ctest --preset aarch64 -j2

step "fuzzers: build and 3 x 25 s"
echo "==> fuzzing the model loader, the dataset reader and the JSON requests (libFuzzer, AddressSanitizer + UBSan; 25 s each, scripts/fuzz.sh 600 for the long run)"
scripts/fuzz.sh 25

step "WASM builds (single-threaded, threaded)"
funnel_build wasm
echo "==> building the threaded WASM module (build/wasm-threads; its loader goes to build/wasm/package/threads)"
[ -f build/wasm-threads/CMakeCache.txt ] || NODE_PATH=/usr/share/nodejs cmake --preset wasm -B build/wasm-threads \
  -DFUNNEL_WASM_THREADS=ON -DFUNNEL_WASM_PACKAGE_DIR="$PWD/build/wasm/package/threads" >/dev/null
NODE_PATH=/usr/share/nodejs cmake --build build/wasm-threads -j2
echo "==> JS tests (WASM package in Node and Chromium, single-threaded and threaded: the API, the cascade and ranking against the native SDK, errors, the 64 KB size budget; the packed package built by Vite, webpack, esbuild and Rollup, the Web Worker example and tsc --strict over the TypeScript examples, with those tools from npm, skipped where npm cannot install them)"
step "JS fixture models (native CLI)"
FIXTURE=build/test-fixture
rm -rf "$FIXTURE"
build/release/train/funnel generate --out "$FIXTURE/data" --users 400 --items 300 --seed 3 >/dev/null
build/release/train/funnel train --data "$FIXTURE/data/dataset.json" --out "$FIXTURE/model.funnel" --epochs 2 >/dev/null 2>&1
build/release/train/funnel train-ranker --data "$FIXTURE/data/dataset.json" --out "$FIXTURE/ranker.funnel" --epochs 1 \
  --set max_history=20 --set 'user_features=["age","region"]' \
  --set 'coaction=["item_id:item_id","category:category","item_id:region"]' >/dev/null 2>&1
node wasm/examples/users_from_csv.mjs "$FIXTURE/data/users.csv" 25 > "$FIXTURE/users.json"
# The browser tests (tests/js/browser.test.mjs, demo.test.mjs) need playwright-core and uPlot (dev-only); they
# skip, with a message, where npm cannot install them. The demo test trains its own models afresh.
[ -d node_modules/playwright-core ] && [ -d node_modules/uplot ] ||
  npm install --no-audit --no-fund >/dev/null || echo "npm install failed: the browser tests will skip"
step "JS tests (Node, Chromium; the demo's training included)"
rm -rf build/web-demo-test
FUNNEL_DEMO_OUT="$PWD/build/web-demo-test" \
FUNNEL_BIN="$PWD/build/release/train/funnel" \
FUNNEL_WASM_PACKAGE="$PWD/build/wasm/package" \
FUNNEL_TEST_MODEL="$PWD/$FIXTURE/model.funnel" \
FUNNEL_TEST_RANKER="$PWD/$FIXTURE/ranker.funnel" \
FUNNEL_TEST_USERS="$PWD/$FIXTURE/users.json" \
  node --test tests/js/ 2>&1 | tee "$RUN_LOG"
tap_count() { local n; n=$(sed -n "s/^# $1 \\([0-9]*\\)$/\\1/p" "$RUN_LOG" | tail -1); echo "${n:-0}"; }
PASSED=$((PASSED + $(tap_count pass))) FAILED=$((FAILED + $(tap_count fail))) SKIPPED=$((SKIPPED + $(tap_count skipped)))

step ""
echo "==> time per step:"
printf '%s' "$STEP_TIMES"
echo "==> all tests passed in $(( $(date +%s) - start ))s"
echo "tests: $PASSED passed, $FAILED failed, $SKIPPED skipped"
