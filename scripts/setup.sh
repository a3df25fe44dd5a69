# Sourced by demo.sh and test.sh: installs whatever is missing (Debian 12 packages only), once.
set -euo pipefail

FUNNEL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FUNNEL_ROOT
# Emscripten 3.1.6 on Debian finds its JS dependencies (acorn) only through NODE_PATH.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}

FUNNEL_PACKAGES=(
  cmake make g++ pkg-config       # build
  libeigen3-dev                   # trainer: dense products
  zlib1g-dev                      # trainer: gzip-compressed data files
  libflatbuffers-dev flatbuffers-compiler  # the model file
  libxxhash-dev                   # the model file's checksums (XXH3, header-only use)
  catch2                          # C++ tests (v2)
  clang libclang-rt-14-dev        # the loader's fuzzer (libFuzzer, sanitizer runtimes for clang)
  libbenchmark-dev                # bench/
  libfaiss-dev libopenblas0-openmp  # bench/: FAISS IndexFlatIP beside the SDK's search, with OpenBLAS (optional to the build)
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev  # the funnel CLI, configs, logs
  libopenmpi-dev openmpi-bin      # trainer: MPI data-parallel training (mpirun -np N funnel train; FUNNEL_MPI, optional to the build)
  emscripten nodejs               # the WASM module and its tests
  chromium                        # wasm/tools/bench_layers_chromium.mjs: the layer-latency table in a browser (headless, via playwright-core)
  g++-aarch64-linux-gnu qemu-user  # the SDK on 64-bit ARM (NEON): cross-compiled, its tests run under qemu
  # The Python module (bindings/python), built offline by pip with Debian's Python (/usr/bin/python3):
  python3-dev pybind11-dev        # the extension's headers: Python's and pybind11's (find_package(pybind11 CONFIG))
  python3-venv python3-pip python3-setuptools python3-wheel  # pip install --no-build-isolation into a venv (setuptools drives CMake)
  python3-numpy                   # results and the model's tensors as numpy arrays (the module's one requirement)
  python3-pandas python3-tqdm     # optional to the module: DataFrames in and out, the default progress bar
  python3-pytest                  # tests/python
)

funnel_setup() {
  local missing=()
  for p in "${FUNNEL_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing with apt: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Configures (once) and builds a CMake preset.
funnel_build() {
  local preset="$1"
  echo "==> building preset '$preset'"
  if [ ! -f "$FUNNEL_ROOT/build/$preset/CMakeCache.txt" ]; then
    cmake --preset "$preset" -S "$FUNNEL_ROOT" >/dev/null
  fi
  cmake --build --preset "$preset"
}

funnel_setup
