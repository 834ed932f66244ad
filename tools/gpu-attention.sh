#!/usr/bin/env bash
# The attention kernels on the GPU machine, in one call: builds the test binary and the attention
# benchmark for the card (sm_90a on Hopper), checks that the sm_90a forward is in the library as
# warp-group MMAs (HGMMA in its machine code), runs the attention test cases, then times
# bench_attention once per forward kernel (EMBER_FLASH_SM90: 0 = the mma.sync kernel, default,
# and the variants ops/cuda/flash_attention_sm90.cu lists) beside PyTorch's SDPA in the same call.
# Logs go to $OUT (the device tool) or build-gpu/logs; a summary is printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build-gpu/logs}
mkdir -p "$out"
export PATH="/usr/local/cuda/bin:$PATH"
summary=()
# The non-default variants to compare (EMBER_FLASH_SM90 values; ops/cuda/flash_attention_sm90.cu).
variants=${EMBER_ATTN_VARIANTS:-s2 n128s pp n64s}
note() { summary+=("$*"); }

arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
[ "$arch" = 90 ] && arch=90a
note "card: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1) (sm_$arch)"
build=build-gpu
start=$(date +%s)
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dcuda=enabled -Dcuda-arch="$arch" >"$out/configure.log" 2>&1 ||
    { tail -30 "$out/configure.log"; exit 1; }
fi
ninja -C "$build" tests/ember_tests bench/bench_attention >"$out/build.log" 2>&1 ||
  { grep -E "error" "$out/build.log" | sort -u | head -40; echo "build failed"; exit 1; }
note "build: $(( $(date +%s) - start )) s"
note "HGMMA instructions in libember: $(cuobjdump --dump-sass "$build"/libember.so 2>/dev/null | grep -c HGMMA)"

# The whole test binary (every CUDA case) with the default kernel, then the attention cases
# under each variant, then memcheck and racecheck on the fused-attention case.
timeout 240 "$build/tests/ember_tests" >"$out/ember_tests.log" 2>&1
note "ember_tests, all cases (rc $?): $(grep -E '^\[doctest\] (test cases|assertions)' "$out/ember_tests.log" | tr '\n' ' ')"
grep -E "fused error" "$out/ember_tests.log" | head -24 >"$out/attention_errors.txt"
for v in 0 $variants; do
  EMBER_FLASH_SM90=$v timeout 120 "$build/tests/ember_tests" -tc='attention*' >"$out/attention_tests_$v.log" 2>&1
  note "attention cases, EMBER_FLASH_SM90=$v (rc $?): $(grep -E '^\[doctest\] assertions' "$out/attention_tests_$v.log")"
done
for tool in memcheck racecheck; do
  timeout 150 compute-sanitizer --tool $tool --error-exitcode 9 "$build/tests/ember_tests" \
    -tc='attention: the fused kernel matches*' >"$out/sanitize_$tool.log" 2>&1
  note "compute-sanitizer $tool, fused attention case (rc $?): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitize_$tool.log" | tail -1)"
done

python3 bench/torch_attention.py "$out/torch_attn.csv" >"$out/torch_attn.txt" 2>&1 || note "torch_attention.py failed"
for v in 0 default $variants; do
  EMBER_FLASH_SM90=$v timeout 120 "$build/bench/bench_attention" "$out/ember_attn_$v.csv" >"$out/attn_$v.txt" 2>&1 ||
    note "bench_attention ($v) failed: $(tail -2 "$out/attn_$v.txt")"
  [ -f "$out/ember_attn_$v.csv" ] && python3 bench/compare.py "$out/ember_attn_$v.csv" "$out/torch_attn.csv" \
    >"$out/attn_table_$v.md" 2>&1
done

echo "=== attention errors (fused vs float64) ==="
cat "$out/attention_errors.txt"
for v in 0 default $variants; do
  echo "=== EMBER_FLASH_SM90=$v ==="
  grep -E "case|attn_T" "$out/attn_table_$v.md" 2>/dev/null
done
echo "=== summary ==="
printf '%s\n' "${summary[@]}"
