# Cross-compiling for 64-bit ARM Linux (phones' CPUs: NEON/ASIMD is part of the aarch64 baseline) with
# Debian's g++-aarch64-linux-gnu. Used by the `aarch64` preset, which builds only the SDK, the C ABI and
# the SDK-only tests (no trainer) and runs them under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Libraries and headers come from the aarch64 sysroot only, never from the host's /usr/lib/x86_64-linux-gnu.
# Programs (flatc) run on the host.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Packages: the sysroot first, then the host. The only packages the SDK-only build asks for are header-only
# (FlatBuffers, Catch2 v2, nlohmann-json); aarch64-linux-gnu-header-only.cmake defines their targets before
# find_package() runs, so the host's package files find them defined and bring no x86 library in.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(CMAKE_PROJECT_funnel_INCLUDE ${CMAKE_CURRENT_LIST_DIR}/aarch64-linux-gnu-header-only.cmake)
