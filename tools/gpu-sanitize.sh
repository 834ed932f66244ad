#!/usr/bin/env bash
# compute-sanitizer over the test suite's GPU work (issue 10), on the GPU machine: each tool
# named (memcheck, racecheck, initcheck, synccheck) runs the doctest suite without its
# CPU-only device variants and without the multi-process NCCL cases, under a time limit, and
# reports its error summary and how many test cases it finished (doctest -d lists each).
# memcheck also reports failed CUDA calls; the test cases that fail CUDA calls on purpose (an
# out-of-memory, a capture that synchronises) run in a second pass without that report, so
# that any other failed call stands out.
# racecheck checks every kernel, cuBLAS's and cuDNN's too, and is slow (125 test cases in
# 720 s on an H100): restricting it to ember's kernels (--kernel-name kns=ember) ended the run
# at the first cuBLAS GEMM with "Internal Sanitizer Error: The Sanitizer failed to handle a
# hardware exception" (compute-sanitizer of CUDA 13, driver 580), so it is not used.
# EMBER_SANITIZE_DOCTEST adds doctest options, e.g. "--first=1 --last=70" to split a slow tool's
# run over several calls (doctest counts the test cases left after the filters).
# initcheck-by-test counts initcheck's reports by test case and reading kernel instead of
# logging them. initcheck-cublas runs tools/initcheck_cublas.cu (no ember code: one cuBLAS GEMM
# per type, its output read by a plain kernel) under initcheck, to tell whether initcheck sees
# cuBLAS's stores, tools/initcheck_cudnn.cu the same of a cuDNN half convolution's workspace,
# and tools/initcheck_torch.py the same of PyTorch's half GEMM and
# channels-last half convolution.
# Usage: tools/gpu-sanitize.sh BUILD_DIR LOG_DIR SECONDS TOOL...
set -uo pipefail -f  # -f: the doctest filters hold * and [ ]
build=$1 logs=$2 seconds=$3
shift 3
mkdir -p "$logs"
export PATH="/usr/local/cuda/bin:$PATH"
skip="*[cpu]*,distributed:*"
on_purpose=$(cat "$(dirname "$0")/sanitize-on-purpose.txt")  # cases that fail CUDA calls on purpose
export EMBER_UNDER_SANITIZER=1  # timing-based checks allow for instrumented kernels

run() {  # run TOOL LOG [sanitizer options...] -- [doctest options...]
  local tool=$1 log=$2
  shift 2
  local opts=()
  while [ "$1" != "--" ]; do opts+=("$1"); shift; done
  shift
  # shellcheck disable=SC2086 (the extra doctest options are words)
  timeout "$seconds" compute-sanitizer --tool "$tool" --error-exitcode 99 --print-limit 30 "${opts[@]}" \
    "$build/tests/ember_tests" -d "$@" ${EMBER_SANITIZE_DOCTEST:-} >"$log" 2>&1
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
  elif [ "$tool" = initcheck-by-test ]; then
    # Every initcheck report, counted by test case and by the kernel that read (the raw log of a
    # tool limitation's hundreds of thousands of reports would not come back from the machine).
    timeout "$seconds" compute-sanitizer --tool initcheck --print-limit 100000000 --show-backtrace no \
      "$build/tests/ember_tests" -d -tce="$skip" ${EMBER_SANITIZE_DOCTEST:-} 2>&1 |
      awk '/Uninitialized/ { getline; sub(/^=* *at /, ""); sub(/\+0x[0-9a-f]+$/, ""); n[substr($0, 1, 220)]++; next }
           /^[0-9.]+ s: / { cases++; for (k in n) printf "%6d  %s  <-  %s\n", n[k], k, substr($0, index($0, ": ") + 2);
                            delete n; next }
           /SUMMARY|doctest\] test cases/ { print }
           END { print cases " test cases finished" }' >"$logs/sanitize_initcheck_by_test.txt"
    echo "initcheck by test: $(tail -1 "$logs/sanitize_initcheck_by_test.txt"); $(grep -c '<-' "$logs/sanitize_initcheck_by_test.txt") (test, kernel) pairs with reports"
  elif [ "$tool" = initcheck-cublas ]; then
    here=$(dirname "$0")
    nvcc -O2 -arch=sm_90 "$here/initcheck_cublas.cu" -lcublas -o "$logs/initcheck_cublas" || continue
    for case in float half half-memset bfloat16; do
      compute-sanitizer --tool initcheck --print-limit 3 "$logs/initcheck_cublas" "$case" \
        >"$logs/initcheck_cublas_$case.log" 2>&1
      echo "initcheck on cuBLAS alone, $case: $(grep -E '^========= ERROR SUMMARY' "$logs/initcheck_cublas_$case.log"); first report in: $(grep -m1 -A1 Uninitialized "$logs/initcheck_cublas_$case.log" | tail -1 | sed 's/^=* *//' | cut -c1-120)"
    done
    # cuDNN alone: a float16 convolution in each of the half-precision test's four geometries
    # (stride, padding, dilation, groups), its algorithm by heuristics and by timing, with a fresh
    # workspace; the first geometry also with one set first.
    if nvcc -O2 -arch=sm_90 "$here/initcheck_cudnn.cu" -lcudnn -o "$logs/initcheck_cudnn"; then
      i=0
      for args in "fresh-workspace heuristic 1 1 1 1 1 1 1" "memset-workspace heuristic 1 1 1 1 1 1 1" \
                  "fresh-workspace timed 1 1 1 1 1 1 1" "fresh-workspace heuristic 2 2 3 3 1 1 1" \
                  "fresh-workspace timed 2 2 3 3 1 1 1" "fresh-workspace heuristic 1 2 2 1 2 2 4" \
                  "fresh-workspace timed 1 2 2 1 2 2 4" "fresh-workspace heuristic 1 1 1 1 1 1 16" \
                  "fresh-workspace timed 1 1 1 1 1 1 16"; do
        i=$((i + 1))
        # shellcheck disable=SC2086
        compute-sanitizer --tool initcheck --print-limit 3 "$logs/initcheck_cudnn" $args \
          >"$logs/initcheck_cudnn_$i.log" 2>&1
        echo "initcheck on cuDNN alone ($args): $(grep -E '^algorithm' "$logs/initcheck_cudnn_$i.log"); $(grep -E '^========= ERROR SUMMARY' "$logs/initcheck_cudnn_$i.log" | head -1); first report in: $(grep -m1 -A1 Uninitialized "$logs/initcheck_cudnn_$i.log" | tail -1 | sed 's/^=* *//' | cut -c1-120)"
      done
    fi
    # The same through PyTorch (its cuBLAS and cuDNN calls), where it is installed.
    for case in float_gemm half_gemm conv_half conv_half_channels_last; do
      python3 -c 'import torch' 2>/dev/null || break
      compute-sanitizer --tool initcheck --print-limit 3 python3 "$here/initcheck_torch.py" "$case" \
        >"$logs/initcheck_torch_$case.log" 2>&1
      echo "initcheck on PyTorch, $case: $(grep -E '^========= ERROR SUMMARY' "$logs/initcheck_torch_$case.log"); first report in: $(grep -m1 -A1 Uninitialized "$logs/initcheck_torch_$case.log" | tail -1 | sed 's/^=* *//' | cut -c1-120)"
    done
  else
    run "$tool" "$logs/sanitize_$tool.log" -- -tce="$skip"
  fi
done
