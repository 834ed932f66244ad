#!/usr/bin/env bash
# compute-sanitizer over the test suite's GPU work (issue 10), on the GPU machine: each tool
# named (memcheck, racecheck, initcheck, synccheck) runs the doctest suite without its
# CPU-only device variants and without the multi-process NCCL cases, under a time limit, and
# reports its error summary and how many test cases it finished (doctest -d lists each).
# memcheck also reports failed CUDA calls; the test cases that fail CUDA calls on purpose (an
# out-of-memory, a capture that synchronises) run in a second pass without that report, so
# that any other failed call stands out.
# Usage: tools/gpu-sanitize.sh BUILD_DIR LOG_DIR SECONDS TOOL...
set -uo pipefail
build=$1 logs=$2 seconds=$3
shift 3
mkdir -p "$logs"
export PATH="/usr/local/cuda/bin:$PATH"
skip="*[cpu]*,distributed:*"
on_purpose="cuda: the memory cap throws*,cuda: a request larger than the device*,cuda graphs: a capture that synchronises*,memory faults:*"

run() {  # run TOOL LOG [sanitizer options...] -- [doctest options...]
  local tool=$1 log=$2
  shift 2
  local opts=()
  while [ "$1" != "--" ]; do opts+=("$1"); shift; done
  shift
  timeout "$seconds" compute-sanitizer --tool "$tool" --error-exitcode 99 --print-limit 30 "${opts[@]}" \
    "$build/tests/ember_tests" -d "$@" >"$log" 2>&1
  local rc=$? finished summary
  finished=$(grep -cE '^[0-9.]+ s: ' "$log")
  summary=$(grep -E '^========= (ERROR SUMMARY|RACECHECK SUMMARY)' "$log" | tail -1)
  [ "$log" != "${log%_on_purpose.log}" ] && tool="$tool (failing CUDA calls on purpose)"
  case $rc in
    124) echo "$tool: cut off after $seconds s, $finished test cases finished; $(grep -c '^========= [A-Z]' "$log") sanitizer lines so far" ;;
    0) echo "$tool: clean, $finished test cases; $summary" ;;
    *) echo "$tool: exit $rc, $finished test cases; $summary" ;;
  esac
}

for tool in "$@"; do
  if [ "$tool" = memcheck ]; then
    run memcheck "$logs/sanitize_memcheck.log" -- -tce="$skip,$on_purpose"
    run memcheck "$logs/sanitize_memcheck_on_purpose.log" --report-api-errors no -- -tc="$on_purpose" -tce="$skip"
  else
    run "$tool" "$logs/sanitize_$tool.log" -- -tce="$skip"
  fi
done
