#!/usr/bin/env bash
# Configures build-fuzz/ (clang, AddressSanitizer + UndefinedBehaviorSanitizer, the library
# instrumented for libFuzzer's coverage feedback) if needed, and builds the targets named.
# Shared by tools/fuzz.sh and tools/sanitize.sh. Usage: tools/sanitizer-build.sh TARGET...
set -uo pipefail
cd "$(dirname "$0")/.."
build=build-fuzz
tools/install-packages.sh clang libclang-rt-14-dev libomp-14-dev
log=$build/build.log
mkdir -p $build
if [ ! -f $build/build.ninja ]; then
  # The library's coverage feedback for libFuzzer (-fsanitize=fuzzer-no-link) comes with
  # -Dfuzz=true (meson.build says where). -O1 with line tables only: reports still name files
  # and lines. Measured on CI's 2 cores: -O1 compiles in 885 s of compiler time against -O2's
  # 1553 s (5.5 minutes less of CI's 30), and the suite under ASan then takes 178 s against 141.
  # No AVX2/AVX-512 builds of the GEMM: the same Eigen code as the baseline's, and two minutes
  # of compiling under the sanitizers.
  CC=clang CXX=clang++ meson setup $build -Doptimization=1 -Ddebug=false -Dcuda=disabled -Dtests=true -Dfuzz=true \
    -Dgemm-variants=false \
    -Dcpp_args=-gline-tables-only \
    -Db_sanitize=address,undefined -Db_lundef=false >$log 2>&1 || { tail -20 $log; exit 1; }
fi
ninja -C $build "$@" >>$log 2>&1 || { grep -E "error" $log | head -20; exit 1; }
