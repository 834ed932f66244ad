#!/usr/bin/env bash
# Cross-builds ember's CPU library and test suite for aarch64 (Jetson's CPU) with Debian's
# cross compiler, installing what is missing (the arm64 packages of the libraries ember links
# come through Debian's multiarch). tools/test.sh then runs the suite under qemu-user.
# Usage: tools/cross-test.sh            builds build-aarch64/tests/ember_tests
#        tools/cross-test.sh --suites   prints the doctest source-file filter of the suites
#                                       measured to pass under qemu-user (tools/test.sh runs those)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --suites ]; then
  suites=(test_autograd test_binary test_checkpoint test_creation test_golden test_index test_matmul test_model
          test_nn test_unary test_views test_vision)
  printf '*%s.cpp,' "${suites[@]}" | sed 's/,$//'
  exit 0
fi

tools/install-packages.sh g++-aarch64-linux-gnu qemu-user libxxhash-dev:arm64 libflatbuffers-dev:arm64

build=build-aarch64
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --cross-file cross/aarch64-linux-gnu.ini -Dcuda=disabled --buildtype=release
fi
ninja -C "$build" tests/ember_tests
readelf -h "$build/tests/ember_tests" | grep -q 'Machine:.*AArch64' || { echo "not an aarch64 binary"; exit 1; }
