// Tensor-core building blocks of the fused attention kernels (sm_80 and later): 16-byte
// asynchronous copies into shared memory, ldmatrix fragment loads from swizzled tiles, and the
// m16n8k16 half/bfloat16 MMA with float accumulators.
//
// Fragment layouts (PTX ISA, "mma.m16n8k16"), with g = lane / 4 and t = lane % 4:
//   A 16×16 (row-major), 4 registers of 2 elements: a0 (g, 2t..2t+1), a1 (g+8, 2t..),
//     a2 (g, 2t+8..), a3 (g+8, 2t+8..);
//   B 16×8 (column-major), 2 registers: b0 (k 2t..2t+1, n g), b1 (k 2t+8.., n g);
//   C 16×8, 4 floats: c0, c1 (g, 2t..2t+1), c2, c3 (g+8, 2t..2t+1).
// Two neighbouring C tiles (n 0..7 and 8..15) hold exactly an A fragment's elements, so the
// probabilities of one product feed the next product without leaving registers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace ember::flash {

/// A tile of 64 rows × D columns in shared memory, stored as 16-byte chunks whose index within
/// the row is XOR-ed with the row's low three bits: the eight rows one ldmatrix phase reads at
/// the same column land in eight different bank groups.
template <int D>
__device__ __forceinline__ int swizzled(int row, int col) {
  return row * D + ((((col >> 3) ^ (row & 7))) << 3) + (col & 7);
}

__device__ __forceinline__ uint32_t smem_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/// Copies 16 bytes (or zero-fills them when src_bytes is 0) without passing through registers.
__device__ __forceinline__ void copy_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void copy_async4(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_address(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void copy_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int Pending>
__device__ __forceinline__ void copy_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
}

__device__ __forceinline__ void load_matrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}
__device__ __forceinline__ void load_matrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}

/// c += a·b on one 16×8×16 tile.
template <typename T>
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

/// Two floats as one register of two T (the first in the low half).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  } else {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
}

/// The A fragment of rows row0..row0+15, columns col0..col0+15 of a swizzled tile. The same
/// addressing with .trans gives the B fragments of a tile stored k-major (B[k][n] = tile[k][n])
/// for n tiles col0..col0+7 (registers 0, 1) and col0+8..col0+15 (registers 2, 3).
template <int D, typename T>
__device__ __forceinline__ void load_a(uint32_t (&r)[4], const T* tile, int row0, int col0, int lane) {
  load_matrix_x4(r, tile + swizzled<D>(row0 + (lane & 15), col0 + ((lane >> 4) << 3)));
}
template <int D, typename T>
__device__ __forceinline__ void load_b_kmajor(uint32_t (&r)[4], const T* tile, int k0, int n0, int lane) {
  load_matrix_x4_trans(r, tile + swizzled<D>(k0 + (lane & 15), n0 + ((lane >> 4) << 3)));
}
/// The B fragments of a tile stored n-major (B[k][n] = tile[n][k], e.g. Kᵀ from K's rows) for
/// n tiles n0..n0+7 (registers 0, 1) and n0+8..n0+15 (registers 2, 3), k = k0..k0+15.
template <int D, typename T>
__device__ __forceinline__ void load_b_nmajor(uint32_t (&r)[4], const T* tile, int n0, int k0, int lane) {
  const int m = lane >> 3;
  load_matrix_x4(r, tile + swizzled<D>(n0 + (lane & 7) + ((m >> 1) << 3), k0 + ((m & 1) << 3)));
}

/// acc[16 × 8·NT] += A[16 × 16·KS] · B where A is a warp's 16 rows of `a_tile` (starting at
/// a_row0) and B = bᵀ with b an n-major tile (rows n0.., the "K" layout): S = Q·Kᵀ.
template <int D, int NT, typename T>
__device__ __forceinline__ void gemm_a_bt(float (&acc)[NT][4], const T* a_tile, int a_row0, const T* b_tile,
                                          int lane) {
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks) {
    uint32_t a[4];
    load_a<D>(a, a_tile, a_row0, ks * 16, lane);
#pragma unroll
    for (int np = 0; np < NT / 2; ++np) {
      uint32_t b[4];
      load_b_nmajor<D>(b, b_tile, np * 16, ks * 16, lane);
      mma16816<T>(acc[2 * np], a, b[0], b[1]);
      mma16816<T>(acc[2 * np + 1], a, b[2], b[3]);
    }
  }
}

/// The same with A already in registers (a[D / 16] fragments, e.g. a warp's rows of Q).
template <int D, int NT, typename T>
__device__ __forceinline__ void gemm_frags_bt(float (&acc)[NT][4], const uint32_t (&a)[D / 16][4], const T* b_tile,
                                              int lane) {
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks) {
#pragma unroll
    for (int np = 0; np < NT / 2; ++np) {
      uint32_t b[4];
      load_b_nmajor<D>(b, b_tile, np * 16, ks * 16, lane);
      mma16816<T>(acc[2 * np], a[ks], b[0], b[1]);
      mma16816<T>(acc[2 * np + 1], a[ks], b[2], b[3]);
    }
  }
}

/// acc[16 × D] += P[16 × 64] · b where P is held in C fragments (p[8][4], float) and b is a
/// k-major 64 × D tile (the "V" layout): O += P·V.
template <int D, typename T>
__device__ __forceinline__ void gemm_p_b(float (&acc)[D / 8][4], const float (&p)[8][4], const T* b_tile,
                                         int lane) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    const uint32_t a[4] = {pack2<T>(p[2 * kk][0], p[2 * kk][1]), pack2<T>(p[2 * kk][2], p[2 * kk][3]),
                           pack2<T>(p[2 * kk + 1][0], p[2 * kk + 1][1]), pack2<T>(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
    for (int dp = 0; dp < D / 16; ++dp) {
      uint32_t b[4];
      load_b_kmajor<D>(b, b_tile, kk * 16, dp * 16, lane);
      mma16816<T>(acc[2 * dp], a, b[0], b[1]);
      mma16816<T>(acc[2 * dp + 1], a, b[2], b[3]);
    }
  }
}

}  // namespace ember::flash
