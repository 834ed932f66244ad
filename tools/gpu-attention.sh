#!/usr/bin/env bash
# The attention kernels on the GPU machine, in one call: builds the test binary and the attention
# benchmark for the card (sm_90a on Hopper), checks that the sm_90a kernels are in the library as
# warp-group MMAs (HGMMA in its machine code) and that ptxas did not serialise them, runs the
# attention test cases under each kernel choice, times bench_attention once per choice
# (EMBER_FLASH_SM90: 0 = the mma.sync kernels, default, and the variants
# ops/cuda/flash_attention_sm90*.cu list) beside PyTorch's SDPA in the same call, then runs the
# whole test binary and compute-sanitizer on the fused-attention cases. Logs go to
# build-gpu/logs (and, as a tarball, to $OUT under the device tool); each summary line is
# printed as it comes, and all of them again at the end.
# EMBER_ATTN_VARIANTS: the variants to time; EMBER_ATTN_TEST_VARIANTS: to test (default: the
# same); EMBER_ATTN_SUITE_SECONDS: the whole test binary's limit (0: not run);
# EMBER_ATTN_SANITIZERS: compute-sanitizer tools to run ("": none), each for at most
# EMBER_ATTN_SANITIZE_SECONDS over the test cases EMBER_ATTN_SANITIZE_CASES names.
set -uo pipefail
cd "$(dirname "$0")/.."
out=build-gpu/logs
mkdir -p "$out"
export PATH="/usr/local/cuda/bin:$PATH"
summary=()
# The non-default variants to compare (EMBER_FLASH_SM90 values; ops/cuda/flash_attention_sm90*.cu):
# fwd keeps the backward on the mma.sync kernels; split (the deterministic two-kernel backward),
# own and bq64p are backward variants; s2, n128s, pp and n64s are forward ones.
variants=${EMBER_ATTN_VARIANTS:-split own fwd}
note() { summary+=("$*"); echo "> $*"; }

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

# The ptxas report of the Hopper kernels: a serialised wgmma (warning C7515 or C7520) costs
# several times their speed.
nvcc -std=c++20 --expt-relaxed-constexpr -I. -I/usr/include/eigen3 -gencode=arch=compute_90a,code=sm_90a \
  -DEMBER_HAVE_SM90A -Xptxas -v -c ops/cuda/flash_attention_sm90_backward.cu -o /tmp/ptxas_check.o >"$out/ptxas.log" 2>&1
note "ptxas, backward kernels: $(grep -c 'Performance Loss' "$out/ptxas.log") serialisation warnings, registers: $(grep -o 'Used [0-9]* registers' "$out/ptxas.log" | sort -u | tr '\n' ' ')"

# The attention cases with the default kernels, then under each variant (EMBER_FLASH_SM90=0:
# the mma.sync kernels throughout).
for v in default 0 ${EMBER_ATTN_TEST_VARIANTS:-$variants}; do
  EMBER_FLASH_SM90=$v timeout 120 "$build/tests/ember_tests" -tc='attention*' >"$out/attention_tests_$v.log" 2>&1
  note "attention cases, EMBER_FLASH_SM90=$v (rc $?): $(grep -E '^\[doctest\] (test cases|assertions)' "$out/attention_tests_$v.log" | tr '\n' ' ')"
done
grep -E "fused error" "$out/attention_tests_default.log" >"$out/attention_errors.txt"

# The benchmark: PyTorch's SDPA, then ember with each kernel choice, in the same call.
python3 bench/torch_attention.py "$out/torch_attn.csv" >"$out/torch_attn.txt" 2>&1 || note "torch_attention.py failed"
for v in default 0 $variants; do
  EMBER_FLASH_SM90=$v timeout 120 "$build/bench/bench_attention" "$out/ember_attn_$v.csv" >"$out/attn_$v.txt" 2>&1 ||
    note "bench_attention ($v) failed: $(tail -2 "$out/attn_$v.txt")"
  [ -f "$out/ember_attn_$v.csv" ] && python3 bench/compare.py "$out/ember_attn_$v.csv" "$out/torch_attn.csv" \
    >"$out/attn_table_$v.md" 2>&1
  echo "=== EMBER_FLASH_SM90=$v ==="
  grep -E "case|attn_T" "$out/attn_table_$v.md" 2>/dev/null
done
echo "=== attention errors (fused vs float64) ==="
cat "$out/attention_errors.txt"
printf '%s\n' "${summary[@]}"

# The whole test binary (every CUDA case) with the default kernels; then compute-sanitizer on
# the fused-attention cases.
suite_seconds=${EMBER_ATTN_SUITE_SECONDS:-240}
if [ "$suite_seconds" != 0 ]; then
  timeout "$suite_seconds" "$build/tests/ember_tests" >"$out/ember_tests.log" 2>&1
  note "ember_tests, all cases (rc $?): $(grep -E '^\[doctest\] (test cases|assertions)' "$out/ember_tests.log" | tr '\n' ' ')"
  grep -E "^TEST CASE|ERROR|error" "$out/ember_tests.log" | head -20
  grep -E "^memory plan" "$out/ember_tests.log"
fi
for tool in ${EMBER_ATTN_SANITIZERS-memcheck racecheck synccheck}; do
  timeout "${EMBER_ATTN_SANITIZE_SECONDS:-150}" compute-sanitizer --tool "$tool" --error-exitcode 9 \
    "$build/tests/ember_tests" -tc="${EMBER_ATTN_SANITIZE_CASES:-attention: the fused kernel matches*,attention: under cuda::set_deterministic*}" \
    >"$out/sanitize_$tool.log" 2>&1
  note "compute-sanitizer $tool, fused attention cases (rc $?): $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitize_$tool.log" | tail -1)"
done
echo "=== summary ==="
printf '%s\n' "${summary[@]}"
[ -n "${OUT:-}" ] && tar -czf "$OUT/attention_logs.tar.gz" -C "$out" .
