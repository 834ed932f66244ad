// The float32 and float64 CPU GEMM compiled again for newer x86-64 instruction sets (AVX2 with
// FMA, AVX-512) and chosen at run time by what the CPU supports. Eigen vectorises for the
// instruction set a file is compiled for, and a library built for any x86-64 machine is
// compiled for SSE2: its products ran at a third to a half of the AVX-512 ones (measured:
// 21 GFLOP/s against 38 with AVX2 and 52 with AVX-512 on one core, float32 256 × 1024 × 1024).
// Plain types only here: gemm_isa.cpp includes Eigen under a renamed namespace.
#pragma once

#include <cstdint>

namespace ember::cpu_gemm {

/// A rows × cols matrix with element strides (s0, s1), unit-stride along one of its dims.
template <typename T>
struct MatrixView {
  const T* data;
  int64_t rows, cols, s0, s1;
};

/// out (a.rows × b.cols, row-major, rows `ldo` elements apart) = alpha · a · b, plus beta · out
/// when `accumulate`; Eigen may use up to `threads` threads.
template <typename T>
using GemmFn = void (*)(const MatrixView<T>& a, const MatrixView<T>& b, T* out, int64_t ldo, T alpha, T beta,
                        bool accumulate, int threads);

#if defined(EMBER_GEMM_VARIANTS)  // meson.build: x86-64 with -Dgemm-variants=true
namespace avx2 {
template <typename T>
void gemm(const MatrixView<T>& a, const MatrixView<T>& b, T* out, int64_t ldo, T alpha, T beta, bool accumulate,
          int threads);
}
namespace avx512 {
template <typename T>
void gemm(const MatrixView<T>& a, const MatrixView<T>& b, T* out, int64_t ldo, T alpha, T beta, bool accumulate,
          int threads);
}
#endif

/// The fastest variant this CPU can run, or nullptr where the library's own build is the best
/// there is (no newer instruction set, not x86-64, or built without the variants).
template <typename T>
GemmFn<T> best_gemm();

/// "avx512", "avx2" or "baseline": the GEMM variant in use.
const char* gemm_isa();

}  // namespace ember::cpu_gemm
