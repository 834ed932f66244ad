#!/usr/bin/env bash
# One device call's worth of checking, for sessions with little GPU time: builds the test
# binary, the attention benchmark and the CLI for this card; runs the whole test binary while
# compute-sanitizer runs on chosen test cases beside it (the GPU has room for both; neither is
# timed); then, with --bench, the attention benchmark and the inference table beside PyTorch
# (nothing else running), with a libtorch column (bench/libtorch_bench.cpp). A summary comes last; logs go to build-gpu/logs and $OUT.
# EMBER_VERIFY_SANITIZE: "TOOL=CASES;TOOL@SECONDS=CASES..." (doctest -tc filters, or -sf source
# file filters written sf:FILES, run in turn, each for EMBER_VERIFY_SANITIZE_SECONDS or its own
# SECONDS; a run cut off by its limit still reports the cases it finished and the hazards or
# errors it had printed);
# EMBER_VERIFY_SUITE_SECONDS: the whole suite's limit (0: not run); EMBER_VERIFY_INFER_ARGS:
# bench/inference_table.py's options (default: --ablate --only mlp,gpt,vit_b_16);
# EMBER_VERIFY_ATTN_BENCH=0 leaves the attention benchmark out, EMBER_VERIFY_LIBTORCH=0 the
# libtorch column; EMBER_VERIFY_CPU_ARGS: a CPU table after the GPU one (inference_table.py's
# --cpu options, e.g. "--cpu 16 --ablate"), and EMBER_VERIFY_CPU_PROFILE: thread counts at which
# tools/cpu-profile.sh profiles that table's models (e.g. "16,2"), and EMBER_VERIFY_CPU_THREADS:
# "THREADS:MODEL,..." runs bench/cpu_threads.py (OpenMP and allocator settings, page faults and
# context switches) at THREADS on those of the table's models (e.g. "16:resnet18,mobilenet_v2").
# EMBER_VERIFY_TRAIN_GRAPHS=1 adds bench/train_graph_table.py (training steps as CUDA graphs, beside
# PyTorch's) after the GPU inference table. EMBER_VERIFY_ABLATE: "VAR=VALUE ROUNDS MODEL:BATCH ..."
# runs bench/env_ablation.sh after it on the table's exports (MODEL as /tmp/ember_infer names them
# without .ember: "mlp", "gpt", "vit_b_16_b1"), e.g. "EMBER_GEMM_AUTOTUNE=1 3 vit_b_16_b1:1 gpt:1".
# tools/gpu-check.sh stays the full check (fixtures, every benchmark).
# Usage: tools/gpu-verify.sh [--bench | --bench-only]
set -uo pipefail -f  # -f: the doctest filters hold * and [ ]
cd "$(dirname "$0")/.."
out=build-gpu/logs
mkdir -p "$out"
export PATH="/usr/local/cuda/bin:$PATH"
export PYTHONPATH="$PWD/tools/ember_export${PYTHONPATH:+:$PYTHONPATH}"
summary=()
note() { summary+=("$*"); echo "> $*"; }
mode=${1:-}

arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
[ "$arch" = 90 ] && arch=90a
note "card: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1) (sm_$arch)"
build=build-gpu
start=$(date +%s)
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dcuda=enabled -Dcuda-arch="$arch" >"$out/configure.log" 2>&1 ||
    { tail -30 "$out/configure.log"; exit 1; }
fi
targets=(tests/ember_tests bench/bench_attention tools/ember)
[ "${EMBER_VERIFY_TRAIN_GRAPHS:-0}" = 1 ] && targets+=(bench/bench_train)
# The CUPTI tracer that inference_table.py --device-time preloads, where meson found CUPTI.
ninja -C "$build" -t targets all 2>/dev/null | grep -q '^bench/libkernel_trace.so:' && targets+=(bench/libkernel_trace.so)
ninja -C "$build" "${targets[@]}" >"$out/build.log" 2>&1 ||
  { grep -E "error" "$out/build.log" | sort -u | head -40; echo "build failed"; exit 1; }
note "build: $(( $(date +%s) - start )) s"
if [ "$mode" = "--bench" ] || [ "$mode" = "--bench-only" ]; then
  # The libtorch column's C++ harness, built against the installed PyTorch while the tests run.
  libtorch_build=
  if [ "${EMBER_VERIFY_LIBTORCH:-1}" != 0 ]; then
    tools/build-libtorch-bench.sh "$build/libtorch_bench" >"$out/libtorch_build.log" 2>&1 &
    libtorch_build=$!
  fi
fi

doctest_totals() { grep -E '^\[doctest\] (test cases|assertions)' "$1" | tr '\n' ' '; }

if [ "$mode" != "--bench-only" ]; then
  sanitize=${EMBER_VERIFY_SANITIZE:-}
  (
    IFS=';'
    for job in $sanitize; do
      tool=${job%%=*} cases=${job#*=} seconds=${EMBER_VERIFY_SANITIZE_SECONDS:-200}
      if [[ $tool == *@* ]]; then seconds=${tool#*@} tool=${tool%@*}; fi
      log="$out/sanitize_${tool}_$(date +%s%N).log"
      filter=-tc="$cases"
      [[ $cases == sf:* ]] && filter=-sf="${cases#sf:}"
      # -d: each case's duration as it ends, so a run cut off says which cases it finished.
      # The cases that make CUDA calls fail on purpose are left out (their API errors would be
      # counted); tools/gpu-sanitize.sh runs them apart.
      on_purpose=$(cat tools/sanitize-on-purpose.txt)
      EMBER_UNDER_SANITIZER=1 timeout "$seconds" compute-sanitizer --tool "$tool" --error-exitcode 9 \
        --print-limit 30 "$build/tests/ember_tests" "$filter" -tce="$on_purpose" -d=true >"$log" 2>&1
      rc=$?
      echo "compute-sanitizer $tool on '$cases' (rc $rc): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log" | tail -1); $(doctest_totals "$log")" \
        "cases finished: $(grep -cE '^[0-9.]+ s: ' "$log"); hazard or error reports: $(grep -cE '^========= (Error|Warning)' "$log")"
    done >"$out/sanitize_summary.txt"
  ) &
  sanitizers=$!
  suite_seconds=${EMBER_VERIFY_SUITE_SECONDS:-300}
  if [ "$suite_seconds" != 0 ]; then
    start=$(date +%s)
    timeout "$suite_seconds" "$build/tests/ember_tests" >"$out/ember_tests.log" 2>&1
    note "ember_tests, all cases (rc $?, $(( $(date +%s) - start )) s): $(doctest_totals "$out/ember_tests.log")"
    grep -E "^TEST CASE|ERROR" "$out/ember_tests.log" | head -20
  fi
  wait "$sanitizers"
  while read -r line; do note "$line"; done <"$out/sanitize_summary.txt"
  printf '%s\n' "${summary[@]}"
fi

if [ "$mode" = "--bench" ] || [ "$mode" = "--bench-only" ]; then
  if [ "${EMBER_VERIFY_ATTN_BENCH:-1}" != 0 ]; then
    python3 bench/torch_attention.py "$out/torch_attn.csv" >"$out/torch_attn.txt" 2>&1 || note "torch_attention.py failed"
    timeout 120 "$build/bench/bench_attention" "$out/ember_attn.csv" >"$out/attn.txt" 2>&1 ||
      note "bench_attention failed: $(tail -2 "$out/attn.txt")"
    python3 bench/compare.py "$out/ember_attn.csv" "$out/torch_attn.csv" >"$out/attn_table.md" 2>&1
    echo "=== attention, ember / PyTorch ==="
    cat "$out/attn_table.md"
  fi
  libtorch=()
  if [ -z "$libtorch_build" ]; then
    :
  elif wait "$libtorch_build"; then
    libtorch=(--libtorch "$build/libtorch_bench")
  else
    note "libtorch harness not built: $(grep -m3 -E 'error' "$out/libtorch_build.log")"
  fi
  # shellcheck disable=SC2086 (the options are words)
  echo "=== inference table ==="
  timeout "${EMBER_VERIFY_INFER_SECONDS:-300}" python3 bench/inference_table.py "$build/tools/ember" /tmp/ember_infer \
    "${libtorch[@]}" ${EMBER_VERIFY_INFER_ARGS:---ablate --only mlp,gpt,vit_b_16} 2>&1 | tee "$out/inference.txt" |
    grep -v -i "warn"  # progress as it comes: a call cut short still shows the rows it finished
  [ "${PIPESTATUS[0]}" = 0 ] || note "inference_table.py stopped: $(tail -2 "$out/inference.txt")"
  if [ -n "${EMBER_VERIFY_ABLATE:-}" ]; then
    echo "=== switch ablation ==="
    read -r -a words <<<"$EMBER_VERIFY_ABLATE"
    specs=()
    for spec in "${words[@]:2}"; do specs+=("/tmp/ember_infer/${spec%:*}.ember:${spec##*:}"); done
    timeout 300 bench/env_ablation.sh "$build/tools/ember" "${words[0]}" "${words[1]}" "${specs[@]}" 2>&1 |
      tee "$out/ablation.txt"
  fi
  if [ "${EMBER_VERIFY_TRAIN_GRAPHS:-0}" = 1 ]; then
    echo "=== training steps as CUDA graphs ==="
    timeout 200 python3 bench/train_graph_table.py "$build/bench/bench_train" 2>&1 | tee "$out/train_graphs.txt"
    [ "${PIPESTATUS[0]}" = 0 ] || note "train_graph_table.py stopped: $(tail -2 "$out/train_graphs.txt")"
  fi
  if [ -n "${EMBER_VERIFY_CPU_ARGS:-}" ]; then
    echo "=== CPU table ==="
    # shellcheck disable=SC2086 (the options are words)
    timeout "${EMBER_VERIFY_CPU_SECONDS:-200}" python3 bench/inference_table.py "$build/tools/ember" /tmp/ember_infer_cpu \
      $EMBER_VERIFY_CPU_ARGS 2>&1 | grep -v -i "warn" | tee "$out/inference_cpu.txt"
    [ "${PIPESTATUS[0]}" = 0 ] || note "the CPU table stopped: $(tail -2 "$out/inference_cpu.txt")"
    if [ -n "${EMBER_VERIFY_CPU_PROFILE:-}" ]; then
      echo "=== CPU profiles ==="
      # shellcheck disable=SC2046 (one model per word; no glob under set -f)
      tools/cpu-profile.sh "$build/tools/ember" "$EMBER_VERIFY_CPU_PROFILE" \
        $(find /tmp/ember_infer_cpu -name '*_b1.ember' | sort) 2>&1 | tee "$out/cpu_profile.txt"
    fi
    if [ -n "${EMBER_VERIFY_CPU_THREADS:-}" ]; then
      echo "=== CPU threading settings ==="
      spec=$EMBER_VERIFY_CPU_THREADS models=() names=${EMBER_VERIFY_CPU_THREADS#*:}
      for m in ${names//,/ }; do models+=("/tmp/ember_infer_cpu/${m}_cpu_b1.ember"); done
      python3 bench/cpu_threads.py "$build/tools/ember" "${spec%%:*}" "${models[@]}" 2>&1 | tee "$out/cpu_threads.txt"
    fi
  fi
fi
echo "=== summary ==="
printf '%s\n' "${summary[@]}"
if [ -n "${OUT:-}" ]; then
  cp "$out"/ember_tests.log "$out"/sanitize_summary.txt "$out"/attn_table.md "$out"/inference.txt \
    "$out"/inference_cpu.txt "$out"/cpu_profile.txt "$out"/cpu_threads.txt "$out"/train_graphs.txt "$out"/ablation.txt \
    "$OUT"/ 2>/dev/null
  tar -czf "$OUT/verify_logs.tar.gz" -C "$out" .
fi
