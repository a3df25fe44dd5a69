#!/usr/bin/env bash
# The SDK runtime benchmarks (README, "Measured" > "SDK runtime") in one run of funnel_bench: memory read
# bandwidth, model load, the user tower, top-K search in f32/f16/int8 (one query on 1 and 2 threads, batches
# of 64), FAISS IndexFlatIP on the same vectors, pre-ranking of 1,000 candidates, ranking of 100 and the whole
# cascade. Writes
# build/bench/sdk_runtime-<time>.json (and a copy as build/bench/sdk_runtime.json) and prints the markdown
# table of this run (bench/sdk_table.py; give it several runs' JSON files to pool them).
#
#   bench/run_sdk_bench.sh                           # 5 repetitions of each, in random order; medians
#   bench/run_sdk_bench.sh --benchmark_repetitions=1  # extra flags go to funnel_bench
#
# The repetitions are interleaved at random (all benchmarks' first repetitions, in a shuffled order, then
# the second ones, ...), so that a slow minute of the host (this is a VM: other tenants share its cores'
# siblings, its L3 and its memory) spreads over every figure instead of landing on a few.
# FAISS runs with OpenBLAS (Debian's libopenblas0-openmp) put first through LD_LIBRARY_PATH, whatever the
# libblas.so.3 alternative points to, and OMP_NUM_THREADS=2 (this machine's cores). Neither matters to the
# SDK: it uses no BLAS and no OpenMP (its search threads are its own). OpenBLAS 0.3.21 does not recognise
# this VM's CPU (family 6 model 207, with AVX-512) and falls back to its SSE3 "Prescott" kernels, so the
# main run sets OPENBLAS_CORETYPE=SkylakeX (AVX-512, the fastest here). Two short runs then repeat FAISS's
# batches with OPENBLAS_CORETYPE=Haswell (AVX2+FMA, the SDK's instruction set) and with OpenBLAS's own
# choice; the table shows all three.
# The load benchmark's model files are built again after each rebuild of funnel_bench (under a minute; cached
# in /tmp/funnel-bench-load).
# Figures are noisy while anything else runs: check `uptime` first (it is printed, and the load average
# is also in the JSON's context).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cmake --preset release >/dev/null
cmake --build --preset release --target funnel_bench

OPENBLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-openmp
if [ -e "$OPENBLAS_DIR/libblas.so.3" ]; then
  export LD_LIBRARY_PATH="$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  echo "warning: $OPENBLAS_DIR/libblas.so.3 is missing (apt-get install libopenblas0-openmp):" \
       "FAISS uses whichever libblas.so.3 the system resolves (its label in the JSON names it)" >&2
fi
export OMP_NUM_THREADS=2

mkdir -p build/bench
RUN=build/bench/sdk_runtime-$(date -u +%Y%m%dT%H%M%S)
echo "==> $(uptime)"
OPENBLAS_CORETYPE=SkylakeX build/release/bench/funnel_bench \
  --benchmark_filter='MemoryBandwidth|BM_Search|FaissFlatIP|LoadFile|VerifyKeys|UserEmbedding|PreRank|Recommend|BM_Rank/(can|dnn)_100' \
  --benchmark_min_time=0.5 --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true \
  --benchmark_out="$RUN.json" --benchmark_out_format=json "$@"
FILES=("$RUN.json")
if build/release/bench/funnel_bench --benchmark_list_tests | grep -q FaissFlatIP; then
  OPENBLAS_CORETYPE=Haswell build/release/bench/funnel_bench --benchmark_filter='FaissFlatIP/.*/batch:64' \
    --benchmark_min_time=0.5 --benchmark_repetitions=5 --benchmark_out="$RUN-haswell.json" --benchmark_out_format=json "$@"
  env -u OPENBLAS_CORETYPE build/release/bench/funnel_bench --benchmark_filter='FaissFlatIP/.*/batch:64' \
    --benchmark_min_time=0.5 --benchmark_repetitions=5 --benchmark_out="$RUN-openblas-default.json" --benchmark_out_format=json "$@"
  FILES+=("$RUN-haswell.json" "$RUN-openblas-default.json")
fi
echo "==> $(uptime)"
cp "$RUN.json" build/bench/sdk_runtime.json
echo "==> ${FILES[*]}"
python3 bench/sdk_table.py "${FILES[@]}"
