// CPU GEMM through Eigen. Each matrix of a batch is mapped in place, row- or column-major
// by its strides, so transposed operands are not copied. Half types multiply in float.
// float32 and float64 products go to the AVX2 or AVX-512 build of the same code where the CPU
// has them (gemm_isa.h).
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdlib>
#include <utility>
#include <cstring>

#include "ops/copy.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/gemm_isa.h"
#include "ops/matmul.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"

namespace ember {

namespace cpu_gemm {

namespace {

// The newest variant the CPU and its OS support (libgcc's check includes the OS's saving of
// the vector registers), capped by EMBER_CPU_GEMM=baseline|avx2|avx512 (tests compare them).
const char* pick_isa() {
#if defined(EMBER_GEMM_VARIANTS)
  const char* cap = std::getenv("EMBER_CPU_GEMM");
  const bool allow_avx512 = !cap || !std::strcmp(cap, "avx512");
  const bool allow_avx2 = allow_avx512 || !std::strcmp(cap, "avx2");
  __builtin_cpu_init();
  if (allow_avx512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma"))
    return "avx512";
  if (allow_avx2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
#endif
  return "baseline";
}

}  // namespace

const char* gemm_isa() {
  static const char* isa = pick_isa();
  return isa;
}

template <typename T>
GemmFn<T> best_gemm() {
#if defined(EMBER_GEMM_VARIANTS)
  static const GemmFn<T> fn = !std::strcmp(gemm_isa(), "avx512") ? &avx512::gemm<T>
                              : !std::strcmp(gemm_isa(), "avx2") ? &avx2::gemm<T>
                                                                 : nullptr;
  return fn;
#else
  return nullptr;
#endif
}

template GemmFn<float> best_gemm<float>();
template GemmFn<double> best_gemm<double>();

}  // namespace cpu_gemm

namespace {

using Eigen::Dynamic;
template <typename T> using RowMat = Eigen::Matrix<T, Dynamic, Dynamic, Eigen::RowMajor>;
template <typename T> using ColMat = Eigen::Matrix<T, Dynamic, Dynamic, Eigen::ColMajor>;
using OuterStride = Eigen::OuterStride<>;

// A rows x cols matrix with element strides (s0, s1) maps onto Eigen row-major when its rows
// are unit-stride and do not overlap, or column-major likewise; otherwise (broadcast strides
// of 0, general strides) it must be copied first.
bool row_major_ok(int64_t rows, int64_t cols, int64_t s0, int64_t s1) {
  return (cols <= 1 || s1 == 1) && (rows <= 1 || s0 >= cols);
}
bool col_major_ok(int64_t rows, int64_t cols, int64_t s0, int64_t s1) {
  return (rows <= 1 || s0 == 1) && (cols <= 1 || s1 >= rows);
}

template <typename T, typename Fn>
void with_matrix(const T* p, int64_t rows, int64_t cols, int64_t s0, int64_t s1, Fn&& fn) {
  if (row_major_ok(rows, cols, s0, s1)) {
    fn(Eigen::Map<const RowMat<T>, 0, OuterStride>(p, rows, cols, OuterStride(rows <= 1 ? cols : s0)));
  } else {
    fn(Eigen::Map<const ColMat<T>, 0, OuterStride>(p, rows, cols, OuterStride(cols <= 1 ? rows : s1)));
  }
}

// A 3-D operand whose matrices Eigen can map in place (else a contiguous copy).
Tensor gemm_ready(const Tensor& t) {
  const int64_t r = t.sizes()[1], c = t.sizes()[2], s0 = t.strides()[1], s1 = t.strides()[2];
  return row_major_ok(r, c, s0, s1) || col_major_ok(r, c, s0, s1) ? t : t.contiguous();
}

// One product into a block of the output: out (n × m, rows ldo apart) = alpha · a · b, plus
// beta · out when `accumulate`; Eigen may use `threads` threads.
template <typename T>
void gemm_block(const T* pa, int64_t n, int64_t k, int64_t as0, int64_t as1, const T* pb, int64_t m, int64_t bs0,
                int64_t bs1, T* po, int64_t ldo, double alpha, double beta, bool accumulate, int threads) {
  using C = opmath_t<T>;  // half types compute in float
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    if (const cpu_gemm::GemmFn<T> variant = cpu_gemm::best_gemm<T>(); variant && k > 0) {
      variant({pa, n, k, as0, as1}, {pb, k, m, bs0, bs1}, po, ldo, static_cast<T>(alpha), static_cast<T>(beta),
              accumulate, threads);
      return;
    }
  }
  Eigen::Map<RowMat<T>, 0, OuterStride> o(po, n, m, OuterStride(ldo));
  with_matrix(pa, n, k, as0, as1, [&](const auto& A) {
    with_matrix(pb, k, m, bs0, bs1, [&](const auto& Bm) {
      if constexpr (std::is_same_v<C, T>) {
        if (accumulate) {
          if (beta != 1) o *= static_cast<T>(beta);  // a bias laid in first (beta 1): no pass
          o.noalias() += static_cast<T>(alpha) * (A * Bm);
        } else if (k == 0) {
          o.setZero();
        } else {
          o.noalias() = static_cast<T>(alpha) * (A * Bm);
        }
      } else {
        RowMat<C> prod = k == 0 ? RowMat<C>::Zero(n, m) : RowMat<C>(A.template cast<C>() * Bm.template cast<C>());
        prod *= static_cast<C>(alpha);
        if (accumulate) prod += static_cast<C>(beta) * o.template cast<C>();
        o = prod.template cast<T>();
      }
    });
  });
}

constexpr int64_t kRowAlign = 8, kColAlign = 16;  // block bounds: the AVX kernels' register tile

// How many blocks to cut one product's output into, along its rows and its columns.
struct GemmGrid {
  int64_t rows = 1, cols = 1;
};

// One block per thread where the product is big enough: each block then runs Eigen's
// single-threaded GEMM on its own rows of a and columns of b, with no synchronisation between
// threads. (Eigen's own parallel GEMM shares packed panels between threads and meets at a
// barrier per panel: those waits were 13–23% of CPU inference profiles on 2 threads.) Of the
// grids that use the most threads, the one whose blocks are most nearly square: each block packs
// k · (its rows + its columns) elements, so that sum is what the choice keeps small.
GemmGrid gemm_grid(int64_t n, int64_t m, int64_t k, int threads) {
  constexpr int64_t kMinBlockWork = int64_t{1} << 18;  // multiply-adds: below this, fewer blocks
  const int64_t work = n * m * std::max<int64_t>(k, 1);
  const int64_t blocks = std::clamp<int64_t>(work / kMinBlockWork, 1, threads);
  const int64_t max_rows = (n + kRowAlign - 1) / kRowAlign, max_cols = (m + kColAlign - 1) / kColAlign;
  GemmGrid best;
  double best_cost = 0;
  for (int64_t r = 1; r <= std::min(blocks, max_rows); ++r) {
    const int64_t c = std::min(blocks / r, max_cols);
    const double cost = static_cast<double>(n) / r + static_cast<double>(m) / c;
    if (r * c > best.rows * best.cols || (r * c == best.rows * best.cols && cost < best_cost)) {
      best = {r, c};
      best_cost = cost;
    }
  }
  return best;
}

// Block i of `count` along a dim of `size`, its bounds multiples of `align` (but the last).
std::pair<int64_t, int64_t> block_bounds(int64_t i, int64_t count, int64_t size, int64_t align) {
  const int64_t units = (size + align - 1) / align;
  return {std::min(size, units * i / count * align), std::min(size, units * (i + 1) / count * align)};
}

// One product: out (n × m, contiguous) = alpha · a · b, plus beta · out when `accumulate`.
template <typename T>
void gemm_one(const T* pa, int64_t n, int64_t k, int64_t as0, int64_t as1, const T* pb, int64_t m, int64_t bs0,
              int64_t bs1, T* po, double alpha, double beta, bool accumulate) {
  const int threads = get_num_threads();
  static const bool blocks_on = !std::getenv("EMBER_GEMM_BLOCKS") || std::getenv("EMBER_GEMM_BLOCKS")[0] != '0';
  const GemmGrid grid = blocks_on && threads > 1 && !omp_in_parallel() ? gemm_grid(n, m, k, threads) : GemmGrid{};
  if (grid.rows * grid.cols == 1) {
    gemm_block(pa, n, k, as0, as1, pb, m, bs0, bs1, po, m, alpha, beta, accumulate, threads);
    return;
  }
  parallel_for(0, grid.rows * grid.cols, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t i = b0; i < b1; ++i) {
      const auto [r0, r1] = block_bounds(i / grid.cols, grid.rows, n, kRowAlign);
      const auto [c0, c1] = block_bounds(i % grid.cols, grid.cols, m, kColAlign);
      gemm_block(pa + r0 * as0, r1 - r0, k, as0, as1, pb + c0 * bs1, c1 - c0, bs0, bs1, po + r0 * m + c0, m, alpha,
                 beta, accumulate, 1);
    }
  });
}

// out = beta * out + alpha * a @ b for float types and int64.
void gemm_into(const Tensor& a_in, const Tensor& b_in, const Tensor& out, double alpha, double beta, bool has_bias) {
  const Tensor a = gemm_ready(a_in);
  const Tensor b = gemm_ready(b_in);
  const int64_t B = a.sizes()[0], n = a.sizes()[1], k = a.sizes()[2], m = b.sizes()[2];
  dispatch<kFloatingSet | dtype_bit(kInt64)>(a.dtype(), "matmul", [&]<typename T>() {
    auto one = [&](int64_t i) {
      gemm_one(a.data_ptr<T>() + i * a.strides()[0], n, k, a.strides()[1], a.strides()[2],
               b.data_ptr<T>() + i * b.strides()[0], m, b.strides()[1], b.strides()[2], out.data_ptr<T>() + i * n * m,
               alpha, beta, has_bias);
    };
    // Many matrices: one per thread. Few: Eigen parallelises each product itself.
    if (B >= get_num_threads() && B > 1) {
      parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t i = b0; i < b1; ++i) one(i);
      });
    } else {
      for (int64_t i = 0; i < B; ++i) one(i);
    }
  });
}

}  // namespace

namespace cpu {

template <typename T>
void gemm(const T* a, int64_t n, int64_t k, int64_t as0, int64_t as1, const T* b, int64_t m, int64_t bs0,
          int64_t bs1, T* out, bool accumulate) {
  gemm_one(a, n, k, as0, as1, b, m, bs0, bs1, out, 1.0, 1.0, accumulate);
}

template void gemm<float>(const float*, int64_t, int64_t, int64_t, int64_t, const float*, int64_t, int64_t, int64_t,
                          float*, bool);
template void gemm<double>(const double*, int64_t, int64_t, int64_t, int64_t, const double*, int64_t, int64_t,
                           int64_t, double*, bool);

}  // namespace cpu

void GemmOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  const Tensor& out = outputs[0];
  if (has_bias) copy_(out, inputs[2]);
  if (out.numel() == 0) return;
  const DType dtype = inputs[0].dtype();
  if (is_integral(dtype) && dtype != kInt64) {
    // Integer products wrap modulo 2^bits, as in PyTorch: int64 arithmetic narrowed back gives
    // the same bits, so one Eigen GEMM serves every integer type (the library stays smaller).
    Tensor out64 = out.to(kInt64);
    gemm_into(inputs[0].to(kInt64), inputs[1].to(kInt64), out64, alpha, beta, has_bias);
    copy_(out, out64);
    apply_gemm_activation(out, activation);
    return;
  }
  gemm_into(inputs[0], inputs[1], out, alpha, beta, has_bias);
  apply_gemm_activation(out, activation);
}

}  // namespace ember
