#!/usr/bin/env bash
# compute-sanitizer over the test suite's GPU work (issue 10), on the GPU machine: each tool
# named (memcheck, racecheck, initcheck, synccheck) runs the doctest suite without its
# CPU-only device variants and without the multi-process NCCL cases, under a time limit, and
# reports its error summary and how many test cases it finished (doctest -d lists each).
# Usage: tools/gpu-sanitize.sh BUILD_DIR LOG_DIR SECONDS TOOL... [-- doctest filters]
set -uo pipefail
build=$1 logs=$2 seconds=$3
shift 3
tools=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do tools+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
mkdir -p "$logs"
export PATH="/usr/local/cuda/bin:$PATH"
for tool in "${tools[@]}"; do
  log=$logs/sanitize_$tool.log
  timeout "$seconds" compute-sanitizer --tool "$tool" --error-exitcode 99 --print-limit 30 \
    "$build/tests/ember_tests" -d -tce="*[cpu]*,distributed:*" "$@" >"$log" 2>&1
  rc=$?
  finished=$(grep -cE '^[0-9.]+ s: ' "$log")
  summary=$(grep -E '^========= (ERROR SUMMARY|RACECHECK SUMMARY)' "$log" | tail -1)
  case $rc in
    124) echo "$tool: cut off after ${seconds} s, $finished test cases finished; $(grep -c '^========= [A-Z]' "$log") sanitizer lines so far" ;;
    0) echo "$tool: clean, $finished test cases; $summary" ;;
    *) echo "$tool: exit $rc, $finished test cases; $summary" ;;
  esac
done
