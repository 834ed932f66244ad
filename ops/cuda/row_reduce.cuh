// Rows of a contiguous tensor reduced and rewritten by the threads that hold them: a warp per
// row (rows up to kWarpRowsMax elements), a block per row (longer rows), or a thread per row
// when the row's elements are `inner` apart (a reduction along a dim other than the last).
// Shared by the softmax and normalisation kernels.
#pragma once

#include <cstdint>

#include "ops/cuda/loops.cuh"
#include "ops/softmax.h"  // RowGeometry

namespace ember::cuda_ops {

/// The sum of v over a warp, in every lane.
template <typename A>
__device__ A warp_sum(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

}  // namespace ember::cuda_ops

namespace ember::cuda_ops::rows {

constexpr int kWarpRowsMax = 1024;  // longer rows take a block each
constexpr int kRowsPerWarpBlock = cuda_ops::kBlock / 32;

struct Shape3 {
  int64_t outer, size, inner;
};

// Where the calling thread's row starts, its first element and the step between its elements,
// for the three layouts. Returns false for threads without a row.
struct RowSlot {
  int64_t start = 0;  // offset of the row's first element
  int64_t first = 0, step = 1;  // the thread's first index in the row, and its stride
  int64_t stride = 1;  // elements between neighbours in the row
};

enum class Layout { WarpRows, BlockRows, Columns };

template <Layout L>
__device__ bool row_slot(const Shape3& s, RowSlot& r) {
  if constexpr (L == Layout::WarpRows) {
    const int64_t row = int64_t{blockIdx.x} * kRowsPerWarpBlock + (threadIdx.x >> 5);
    if (row >= s.outer) return false;
    r = {row * s.size, threadIdx.x & 31, 32, 1};
  } else if constexpr (L == Layout::BlockRows) {
    r = {int64_t{blockIdx.x} * s.size, threadIdx.x, blockDim.x, 1};
  } else {
    const int64_t col = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
    if (col >= s.outer * s.inner) return false;
    r = {(col / s.inner) * s.size * s.inner + col % s.inner, 0, 1, s.inner};
  }
  return true;
}

// Combines per-thread partial results into the row's result, for every thread of the row.
// merge.warp(p) combines a warp's partials (shuffles), merge(p, q) two partials.
template <Layout L, typename Part, typename Merge>
__device__ Part reduce_row(Part p, Merge merge) {
  if constexpr (L == Layout::Columns) return p;
  p = merge.warp(p);
  if constexpr (L == Layout::BlockRows) {
    __shared__ alignas(Part) unsigned char storage[32 * sizeof(Part)];  // Part has initialisers
    Part* parts = reinterpret_cast<Part*>(storage);
    const int warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();  // an earlier reduce_row in the same kernel has finished reading parts
    if ((threadIdx.x & 31) == 0) parts[warp] = p;
    __syncthreads();
    p = parts[0];
    for (int w = 1; w < warps; ++w) p = merge(p, parts[w]);
  }
  return p;
}

/// Runs Launch<T, layout>::run(blocks, stream, shape, args...) with the layout and block count
/// that suit the geometry.
template <template <typename, Layout> class Launch, typename T, typename... Args>
void launch_rows(const RowGeometry& g, cudaStream_t stream, Args... args) {
  const Shape3 s{g.outer, g.size, g.inner};
  if (g.outer * g.inner == 0) return;
  if (g.inner > 1) {
    const unsigned blocks = static_cast<unsigned>((g.outer * g.inner + cuda_ops::kBlock - 1) / cuda_ops::kBlock);
    Launch<T, Layout::Columns>::run(blocks, stream, s, args...);
  } else if (g.size <= kWarpRowsMax) {
    const unsigned blocks = static_cast<unsigned>((g.outer + kRowsPerWarpBlock - 1) / kRowsPerWarpBlock);
    Launch<T, Layout::WarpRows>::run(blocks, stream, s, args...);
  } else {
    Launch<T, Layout::BlockRows>::run(static_cast<unsigned>(g.outer), stream, s, args...);
  }
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace ember::cuda_ops::rows
