#!/usr/bin/env bash
# The AVX2 and AVX-512 builds of the float GEMM (ops/cpu/gemm_isa.h) must define no code under
# a name another object could also define: the linker keeps one body per such name, and a body
# compiled for AVX-512 must never stand in for the baseline's. Every function they define must
# sit in their renamed Eigen namespace or in ember::cpu_gemm::<variant>.
# Usage: tools/check-gemm-variants.sh BUILD_DIR
set -euo pipefail
build=$1
found=0
for variant in avx2 avx512; do
  lib="$build/libember_gemm_$variant.a"
  [ -f "$lib" ] || { echo "$lib: missing"; exit 1; }
  # Global, weak and unique code symbols (T, W, V, u), demangled, outside the two namespaces.
  stray=$(nm -C --defined-only "$lib" | grep -E '^[0-9a-f]+ [TWu] ' |
          grep -v -e "EmberEigen_$variant::" -e "ember::cpu_gemm::$variant::" || true)
  if [ -n "$stray" ]; then
    echo "$lib defines code outside its namespaces:"
    echo "$stray" | head -20
    found=1
  fi
  count=$(nm -C --defined-only "$lib" | grep -cE '^[0-9a-f]+ [TWu] ')
  echo "$variant: $count code symbols, all in EmberEigen_$variant or ember::cpu_gemm::$variant"
done
exit $found
