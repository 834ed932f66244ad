#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz) with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer into build-fuzz/, seeds each from the fixtures and crafted files,
# and runs each for SECONDS (default 60). Prints each harness's executions and coverage; exits 1
# on any crash, sanitizer report or timeout (a crashing input is kept in build-fuzz/crashes/).
# Usage: tools/fuzz.sh [SECONDS]
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=build-fuzz
tools/sanitizer-build.sh tests/fuzz/fuzz_model_load tests/fuzz/fuzz_model_structure tests/fuzz/fuzz_model_run \
  tests/fuzz/fuzz_npy || exit 1
mkdir -p $build

# Seeds: every model fixture, the bundled model, the .npy files, and crafted files.
corpus=$build/corpus
rm -rf "$corpus" && mkdir -p "$corpus/model" "$corpus/npy" $build/crashes
for f in tests/fixtures/models/*/model.ember; do cp "$f" "$corpus/model/$(basename "$(dirname "$f")").ember"; done
cp examples/data/digits_mlp.ember "$corpus/model/"
cp tests/fixtures/fuzz/*.ember "$corpus/model/"  # inputs that once found a bug
cp tests/fixtures/fuzz/*.npy "$corpus/npy/" 2>/dev/null
python3 tools/fuzz_seeds.py "$corpus" || exit 1
for f in tests/fixtures/models/*/input_0.npy; do cp "$f" "$corpus/npy/$(basename "$(dirname "$f")").npy"; done

# A graph may legitimately ask for more memory than there is: allocations past 2 GB fail (return
# null) so ember's OutOfMemory path runs, instead of the fuzzer stopping at them.
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:max_allocation_size_mb=2048
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# fuzz HARNESS: runs one harness; its summary goes to build-fuzz/HARNESS.summary, and a failure
# leaves build-fuzz/HARNESS.failed.
fuzz() {
  local h=$1 seeds="$corpus/model" run_cap="" timeout=10
  [ "$h" = fuzz_npy ] && seeds="$corpus/npy"
  # Running a mutated graph may build tensors far larger than it declares, and copying GBs
  # under ASan outlasts the timeout: there, allocations past 256 MB fail (OutOfMemory) instead.
  [ "$h" = fuzz_model_run ] && run_cap=":max_allocation_size_mb=256"
  # A valid seed graph of convolutions runs the reference convolution twice (as exported and
  # optimised by the inference passes): 19 s under ASan on a shared core. Slow, not hung.
  [ "$h" = fuzz_model_run ] && timeout=60
  rm -f "$build/$h.failed"
  # -rss_limit_mb: no input may make the process hold more than 3 GB.
  ASAN_OPTIONS="$ASAN_OPTIONS$run_cap" "$build/tests/fuzz/$h" -max_total_time="$seconds" -timeout=$timeout -rss_limit_mb=3072 -malloc_limit_mb=4096 -max_len=300000 \
    -artifact_prefix="$build/crashes/$h-" -print_final_stats=1 "$seeds" >"$build/$h.log" 2>&1
  local rc=$? stats runs
  stats=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$build/$h.log" | tail -1)
  runs=$(grep -E 'stat::number_of_executed_units' "$build/$h.log" | awk '{print $2}')
  echo "$h: ${seconds} s, ${runs:-?} executions, ${stats#*DONE}" >"$build/$h.summary"
  if [ $rc -ne 0 ]; then
    touch "$build/$h.failed"
    { echo "$h FAILED (exit $rc):"
      grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$build/$h.log" | head -10; } >>"$build/$h.summary"
  fi
}

# Two harnesses at a time (libFuzzer runs on one core; CI has two). The three model harnesses
# share a corpus folder: each reads it at start and adds new inputs under names of their hashes.
harnesses=(fuzz_model_load fuzz_model_structure fuzz_model_run fuzz_npy)
fuzz fuzz_model_load & fuzz fuzz_model_structure & wait
fuzz fuzz_model_run & fuzz fuzz_npy & wait
failed=0
for h in "${harnesses[@]}"; do
  cat "$build/$h.summary"
  [ -f "$build/$h.failed" ] && failed=1
done
exit $failed
