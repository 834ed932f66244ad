#!/usr/bin/env bash
# The CPU test suite and the fixture sweeps (every fixture truncated and flipped at every byte of
# its first 16 KiB and every 97th past it, truncated at each of its last 1024 bytes) under
# AddressSanitizer and UndefinedBehaviorSanitizer, in build-fuzz/. Exits 1 on a failed test or
# any sanitizer report.
# Usage: tools/sanitize.sh
set -uo pipefail
cd "$(dirname "$0")/.."
build=build-fuzz
targets=(tests/ember_tests)
[ "${EMBER_SANITIZE_SWEEP:-1}" = 1 ] && targets+=(tests/sweep_fixtures)
tools/sanitizer-build.sh "${targets[@]}" || exit 1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# Leak checking on; a graph may ask for more memory than there is: allocations past 256 MB
# fail (OutOfMemory) rather than stopping the run.
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:max_allocation_size_mb=256
failed=0
# run_suite LOG [doctest filters...]: the suite (or the part the filters pick) under ASan+UBSan.
run_suite() {
  local log=$1
  shift
  if ! OMP_NUM_THREADS=2 "$build/tests/ember_tests" "$@" >"$log" 2>&1; then
    failed=1
    echo "ember_tests under ASan+UBSan FAILED ($*):"
    grep -E "ERROR|SUMMARY|runtime error" "$log" | grep -v "failed to allocate" | head -20
  fi
  echo "ember_tests under ASan+UBSan ($*): $(grep -E '^\[doctest\] test cases' "$log")"
}
# The threaded GEMM cases run apart, with libomp's own per-thread allocations suppressed
# (tools/lsan.supp says why): the suppression matches any stack through libomp.so, so the rest
# of the suite, whose parallel regions would be hidden by it too, runs without it.
threads_suite='*test_matmul_threads.cpp'
# EMBER_SANITIZE_EXCLUDE: doctest -tce filters left out here (CI leaves out a numeric sweep that
# runs un-sanitized in its suite, for its 30 minutes).
run_suite "$build/ember_tests_asan.log" -sfe="$threads_suite" -tce="${EMBER_SANITIZE_EXCLUDE:-}"
LSAN_OPTIONS=suppressions=$PWD/tools/lsan.supp:print_suppressions=0 \
  run_suite "$build/ember_tests_asan_threads.log" -sf="$threads_suite"
# EMBER_SANITIZE_SWEEP=0 (CI, for its 30 minutes) leaves the sweep out: it takes 5 minutes
# under ASan there; the suite's own truncation and flip test and the fuzzers still run.
if [ "${EMBER_SANITIZE_SWEEP:-1}" = 1 ]; then
  if ! "$build/tests/sweep_fixtures" --stride 97 --truncate-stride 97 tests/fixtures/models/*/model.ember examples/data/digits_mlp.ember \
    >"$build/sweep.log" 2>&1; then
    failed=1
    echo "the fixture sweep under ASan+UBSan FAILED:"
    grep -E "ERROR|SUMMARY|runtime error|out of memory" "$build/sweep.log" | grep -v "failed to allocate" | head -20
  fi
  # (ASan's warnings about the allocations it refused past the cap are left out.)
  grep -v "failed to allocate" "$build/sweep.log" | sed 's/^/sweep: /'
else
  echo "sweep under ASan: left out (EMBER_SANITIZE_SWEEP=0)"
fi
exit $failed
