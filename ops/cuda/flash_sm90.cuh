// Device pieces shared by the Hopper attention kernels (flash_attention_sm90.cu, the forward, and
// flash_attention_sm90_backward.cu): head dim 64 as one 128-byte swizzled row, the copy of a
// block of rows through a tensor map whose dims are ordered by stride, the special-function
// exponential, and the two shapes of warp-group product the kernels are made of — a product
// over the head dim of two K-major tiles (S = Q·Kᵀ), and a product whose A operand is an earlier
// product's accumulator packed in registers and whose B tile is MN-major (O += P·V).
#pragma once

#include <cudaTypedefs.h>

#include <string>

#include "ops/cuda/flash_mma.cuh"
#include "ops/cuda/hopper.cuh"
#include "runtime/tensor.h"

namespace ember::flash_sm90 {

constexpr int kD = 64;             // head dim: one 128-byte swizzled row of a half type
constexpr int kGroupRows = 64;     // rows of one consumer warp group (wgmma's M)
constexpr int kRowBytes = kD * 2;  // 128: one swizzle row

/// Copies rows [row, row + box) of head `head` of batch `batch` through `map` (made by
/// detail::make_map, which says in `slot` where each of row, head, batch went among the map's
/// outer coordinates); completion adds the box's bytes to `bar`.
__device__ __forceinline__ void load_rows(void* dst, const CUtensorMap* map, const int (&slot)[3], int row, int head,
                                          int batch, uint64_t* bar) {
  int c[3];
  c[slot[0]] = row;
  c[slot[1]] = head;
  c[slot[2]] = batch;
  hopper::tma_load_4d(dst, map, 0, c[0], c[1], c[2], bar);
}

/// 2^x on the special-function unit, subnormal results flushed to zero (exp2f adds a range
/// check around the same instruction).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

/// Issues acc = A·Bᵀ over the head dim (four k16 steps) as wgmmas: A the 64 rows at a_addr, B
/// the N rows at b_addr, both K-major (their rows run along the head dim).
template <typename T, int N>
__device__ __forceinline__ void issue_ss(float (&acc)[N / 2], uint32_t a_addr, uint32_t b_addr) {
  static_assert(N == 64 || N == 128, "wgmma shapes n64 and n128");
#pragma unroll
  for (int kk = 0; kk < kD / 16; ++kk) {
    if constexpr (N == 128)
      hopper::wgmma_ss_n128<T>(acc, hopper::descriptor(a_addr + kk * 32), hopper::descriptor(b_addr + kk * 32), kk);
    else
      hopper::wgmma_ss_n64<T>(acc, hopper::descriptor(a_addr + kk * 32), hopper::descriptor(b_addr + kk * 32), kk);
  }
}

/// Issues acc += A·B over K rows: A's fragments in registers (pack_fragments), B the K rows at
/// b_addr, MN-major (each row runs along acc's 64 columns).
template <typename T, int K>
__device__ __forceinline__ void issue_rs(float (&acc)[32], const uint32_t (&a)[K / 16][4], uint32_t b_addr) {
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) hopper::wgmma_rs_n64<T>(acc, a[kk], hopper::descriptor(b_addr + kk * 16 * kRowBytes));
}

/// An m64nN accumulator as wgmma A fragments of a 64 × N operand: n8 blocks 2kk and 2kk + 1 are
/// the k16 step kk.
template <typename T, int N>
__device__ __forceinline__ void pack_fragments(uint32_t (&a)[N / 16][4], const float (&acc)[N / 2]) {
#pragma unroll
  for (int kk = 0; kk < N / 16; ++kk)
#pragma unroll
    for (int r = 0; r < 4; ++r) a[kk][r] = flash::pack2<T>(acc[8 * kk + 2 * r], acc[8 * kk + 2 * r + 1]);
}

/// Writes a group's A fragments of a 64 × N operand (pack_fragments) to shared memory at `tile`
/// as 64 rows of N = 64 elements in the 128-byte swizzle, as TMA lays out a tile: this thread's
/// rows are 16·warp + g and + 8, its columns 8c + 2t and + 1 of each 8-column chunk c.
template <int N>
__device__ __forceinline__ void store_swizzled(uint32_t tile, int warp, int g, int t, const uint32_t (&a)[N / 16][4]) {
  static_assert(N == kD, "one 128-byte row per operand row");
#pragma unroll
  for (int kk = 0; kk < N / 16; ++kk)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int row = warp * 16 + g + (r & 1) * 8, chunk = 2 * kk + (r >> 1);  // row % 8 == g
      const uint32_t addr = tile + row * kRowBytes + ((chunk ^ g) << 4) + 4 * t;
      asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(a[kk][r]) : "memory");
    }
}

/// Stores a warp group's 64 × 64 accumulator, times `scale`, as rows of T `row_stride` elements
/// apart; this thread's rows are `row` and `row + 8` (t = lane % 4), kept below `valid`.
template <typename T>
__device__ __forceinline__ void store_rows(T* dst, int64_t row_stride, int row, int valid, int t, const float (&acc)[32],
                                           float scale) {
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = row + half * 8;
    if (r >= valid) continue;
    T* out = dst + int64_t{r} * row_stride;
#pragma unroll
    for (int dt = 0; dt < kD / 8; ++dt)
      *reinterpret_cast<uint32_t*>(out + dt * 8 + 2 * t) =
          flash::pack2<T>(acc[4 * dt + 2 * half] * scale, acc[4 * dt + 2 * half + 1] * scale);
  }
}

// Host side (flash_attention_sm90.cu).
namespace detail {

/// cuTensorMapEncodeTiled from the driver, or null where it has none.
PFN_cuTensorMapEncodeTiled_v12000 encode_function();

/// A tensor map of a [B, H, rows, 64] operand whose box is `box_rows` rows of one head, its
/// outer dims ordered by stride; slot[i] says where (row, head, batch)[i] went. False where the
/// copy engine cannot read the layout (strides not multiples of 16 bytes, an unaligned start).
bool make_map(const Tensor& t, int box_rows, CUtensorMap& map, int (&slot)[3]);

/// The variant EMBER_FLASH_SM90 names (see `forward` and `backward`), read once.
const char* variant();

/// Why neither Hopper kernel may run for q on this build and device, or "" (layouts aside).
std::string device_refusal(const Tensor& q);

/// Lets `kernel` take `bytes` of dynamic shared memory on `device` (once per kernel and device).
void allow_shared_memory(const void* kernel, size_t bytes, int device);

}  // namespace detail

}  // namespace ember::flash_sm90
