#!/usr/bin/env bash
# One switch's effect on `ember bench` (CUDA graphs on), measured in interleaved rounds so drift
# between runs falls on both sides: the median device ms per forward with VAR=VALUE and without.
# Usage: bench/env_ablation.sh EMBER_CLI VAR=VALUE ROUNDS MODEL:BATCH...
set -uo pipefail
cli=$1 switch=$2 rounds=$3
shift 3
median() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["median_ms"])'; }
for spec in "$@"; do
  model=${spec%:*} batch=${spec##*:}
  with=() without=()
  for ((r = 0; r < rounds; ++r)); do
    without+=("$("$cli" bench "$model" --device cuda --batch "$batch" --json --iterations 100 | median)")
    with+=("$(env "$switch" "$cli" bench "$model" --device cuda --batch "$batch" --json --iterations 100 | median)")
  done
  python3 - "$spec" "$switch" "${without[*]}" "${with[*]}" <<'PY'
import statistics, sys
spec, switch, without, with_ = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
a, b = statistics.median(map(float, without)), statistics.median(map(float, with_))
print(f"{spec}: default {a:.4f} ms, {switch} {b:.4f} ms, default / switched {a / b:.3f} (rounds: {without} / {with_})")
PY
done
