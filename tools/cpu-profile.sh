#!/usr/bin/env bash
# Where each model's CPU forward goes, at each thread count: `ember bench --device cpu` with
# EMBER_PROFILE_OPS=1 (graph/op_profile.h) on every .ember file given, printing the median and
# the ops taking at least 1% of the time. For the 16-core gap of issue 9 (bench/RESULTS.md).
# Usage: tools/cpu-profile.sh EMBER_CLI THREADS[,THREADS...] MODEL.ember...
set -uo pipefail
cli=$1 threads=$2
shift 2
for model in "$@"; do
  for n in ${threads//,/ }; do
    log=$(mktemp)
    OMP_NUM_THREADS=$n EMBER_PROFILE_OPS=1 "$cli" bench "$model" --device cpu --warmup 3 --iterations 20 >"$log" 2>&1 ||
      { echo "$model, $n threads: failed: $(tail -2 "$log")"; continue; }
    echo "== $(basename "$model"), $n threads: $(grep -E '^time' "$log" | sed 's/^time *//')"
    awk '/^EMBER_PROFILE_OPS/ {on = 1; next} on && $NF ~ /%$/ && $NF + 0 >= 1 {print "   " $0}' "$log"
    rm -f "$log"
  done
done
