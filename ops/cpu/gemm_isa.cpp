// One instruction-set variant of the float GEMM (gemm_isa.h), compiled once per variant with
// EMBER_GEMM_ISA naming it and that level's -m flags (meson.build). Eigen's namespace is renamed
// for the variant: its templates, instantiated here with AVX2 or AVX-512 code, would otherwise
// share their names with the baseline build's instantiations, and the linker keeps one body
// per name: an AVX-512 body could then run on a machine without AVX-512.
// tests/check_gemm_isa_symbols.sh checks that these objects define no shared (weak) symbol
// outside the renamed namespace.
#define EMBER_CAT2(a, b) a##b
#define EMBER_CAT(a, b) EMBER_CAT2(a, b)
#define Eigen EMBER_CAT(EmberEigen_, EMBER_GEMM_ISA)
#include <Eigen/Core>

#include "ops/cpu/gemm_isa.h"

namespace ember::cpu_gemm::EMBER_GEMM_ISA {

namespace {

using Eigen::Dynamic;
template <typename T>
using RowMat = Eigen::Matrix<T, Dynamic, Dynamic, Eigen::RowMajor>;
template <typename T>
using ColMat = Eigen::Matrix<T, Dynamic, Dynamic, Eigen::ColMajor>;
using OuterStride = Eigen::OuterStride<>;

// Maps a view row- or column-major, whichever its unit stride allows (matmul.cpp checked).
template <typename T, typename Fn>
void with_matrix(const MatrixView<T>& v, Fn&& fn) {
  if ((v.cols <= 1 || v.s1 == 1) && (v.rows <= 1 || v.s0 >= v.cols)) {
    fn(Eigen::Map<const RowMat<T>, 0, OuterStride>(v.data, v.rows, v.cols, OuterStride(v.rows <= 1 ? v.cols : v.s0)));
  } else {
    fn(Eigen::Map<const ColMat<T>, 0, OuterStride>(v.data, v.rows, v.cols, OuterStride(v.cols <= 1 ? v.rows : v.s1)));
  }
}

}  // namespace

template <typename T>
void gemm(const MatrixView<T>& a, const MatrixView<T>& b, T* out, int64_t ldo, T alpha, T beta, bool accumulate,
          int threads) {
  // This variant's Eigen keeps its own thread setting (ember::set_num_threads sets the
  // baseline's): set it where it differs. Builtins and an OpenMP critical section rather than
  // std::atomic and std::mutex, whose inline functions would be instantiated here with this
  // variant's instructions under their usual names.
  static int set_to = 0;
  if (__atomic_load_n(&set_to, __ATOMIC_ACQUIRE) != threads) {
#pragma omp critical(ember_gemm_threads)
    {
      if (set_to != threads) {
        Eigen::setNbThreads(threads);
        __atomic_store_n(&set_to, threads, __ATOMIC_RELEASE);
      }
    }
  }
  Eigen::Map<RowMat<T>, 0, OuterStride> o(out, a.rows, b.cols, OuterStride(ldo));
  with_matrix(a, [&](const auto& A) {
    with_matrix(b, [&](const auto& B) {
      if (accumulate) {
        if (beta != T(1)) o *= beta;  // a bias laid in first (beta 1) needs no pass of its own
        o.noalias() += alpha * (A * B);
      } else {
        o.noalias() = alpha * (A * B);
      }
    });
  });
}

template void gemm<float>(const MatrixView<float>&, const MatrixView<float>&, float*, int64_t, float, float, bool,
                          int);
template void gemm<double>(const MatrixView<double>&, const MatrixView<double>&, double*, int64_t, double, double,
                           bool, int);

}  // namespace ember::cpu_gemm::EMBER_GEMM_ISA
