# Included right after project(funnel) when cross-compiling with aarch64-linux-gnu.cmake.
#
# The header-only dependencies come from the host's /usr/include, but handing the cross compiler
# -isystem /usr/include would put the host's libc headers ahead of the aarch64 sysroot's. So, as the WASM
# build does, a build-local folder holds links to just these headers, and header-only targets point at it.
# The host's FlatBuffers package would also link its x86 libflatbuffers.a; the SDK needs only the headers
# (Verifier and Builder are header-only).
#
# CMake's generated <Package>Targets.cmake files return early when every target they define exists
# already, so the find_package() calls in CMakeLists.txt still check the installed versions but define
# nothing. Every target of each export set is defined here (a partial set is an error; Catch2WithMain is
# unused). FlatBuffers' package files sit in the host's multiarch folder, which a cross build does not
# search, so they are named here.
set(FlatBuffers_DIR /usr/lib/${CMAKE_HOST_SYSTEM_PROCESSOR}-linux-gnu/cmake/flatbuffers)
# Catch2's package file adds its folder (Catch.cmake: catch_discover_tests) to the module path only when it
# defines the targets itself.
list(APPEND CMAKE_MODULE_PATH /usr/lib/cmake/Catch2)
set(FUNNEL_HOST_HEADERS ${CMAKE_BINARY_DIR}/host-include)
file(MAKE_DIRECTORY ${FUNNEL_HOST_HEADERS})
foreach(header_dir flatbuffers catch2 nlohmann)
  file(CREATE_LINK /usr/include/${header_dir} ${FUNNEL_HOST_HEADERS}/${header_dir} SYMBOLIC)
endforeach()

foreach(target flatbuffers::flatbuffers flatbuffers::flatbuffers_shared Catch2::Catch2 Catch2::Catch2WithMain
               nlohmann_json::nlohmann_json)
  add_library(${target} INTERFACE IMPORTED)
  set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${FUNNEL_HOST_HEADERS})
endforeach()
