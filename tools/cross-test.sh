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

packages=(g++-aarch64-linux-gnu qemu-user libxxhash-dev:arm64 libflatbuffers-dev:arm64)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  dpkg --print-foreign-architectures | grep -qx arm64 || $sudo_cmd dpkg --add-architecture arm64
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

build=build-aarch64
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --cross-file cross/aarch64-linux-gnu.ini -Dcuda=disabled --buildtype=release
fi
ninja -C "$build" tests/ember_tests
readelf -h "$build/tests/ember_tests" | grep -q 'Machine:.*AArch64' || { echo "not an aarch64 binary"; exit 1; }
