// Iteration geometry shared by the CPU and CUDA loops.
//
// Element-wise: operand 0 is the output; inputs broadcast to its shape with stride 0. Dims are
// coalesced (merged where every operand's strides allow, size-1 dims dropped), so a
// contiguous tensor of any rank becomes one flat loop.
//
// Reductions: the kept dims and the reduced dims of the input, each coalesced.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "runtime/error.h"
#include "runtime/tensor.h"

namespace ember {

template <int N>
struct Geometry {
  std::vector<int64_t> sizes;                   // outermost first; never empty
  std::vector<std::array<int64_t, N>> strides;  // bytes, per dim and operand
  std::array<char*, N> data{};
  int64_t numel = 0;
};

/// Geometry of operands iterated over `shape`; operands of smaller shape broadcast.
template <int N>
Geometry<N> make_geometry(const Shape& shape, const std::array<const Tensor*, N>& ops) {
  const int64_t ndim = static_cast<int64_t>(shape.size());
  Geometry<N> g;
  g.numel = numel_of(shape);
  for (int i = 0; i < N; ++i) g.data[i] = static_cast<char*>(ops[i]->data());
  // Per-dim strides in bytes, broadcast dims getting 0.
  std::vector<std::array<int64_t, N>> strides(ndim);
  for (int i = 0; i < N; ++i) {
    const Tensor& t = *ops[i];
    const int64_t lead = ndim - t.dim();
    EMBER_ASSERT(lead >= 0, "operand has more dims than the iteration shape");
    const int64_t item = static_cast<int64_t>(t.itemsize());
    for (int64_t d = 0; d < ndim; ++d) {
      int64_t size = d < lead ? 1 : t.sizes()[d - lead];
      strides[d][i] = (size == 1 && shape[d] != 1) || d < lead ? 0 : t.strides()[d - lead] * item;
    }
  }
  // Coalesce: drop size-1 dims, merge an outer dim into the inner one where contiguous.
  for (int64_t d = 0; d < ndim; ++d) {
    if (shape[d] == 1) continue;
    if (!g.sizes.empty()) {
      int64_t inner_size = shape[d];
      bool mergeable = true;
      for (int i = 0; i < N; ++i)
        if (g.strides.back()[i] != strides[d][i] * inner_size) mergeable = false;
      if (mergeable) {
        g.sizes.back() *= inner_size;
        g.strides.back() = strides[d];
        continue;
      }
    }
    g.sizes.push_back(shape[d]);
    g.strides.push_back(strides[d]);
  }
  if (g.sizes.empty()) {
    g.sizes.push_back(1);
    g.strides.push_back({});
  }
  return g;
}

struct ReduceGeometry {
  std::vector<int64_t> kept_sizes, kept_strides;  // strides in bytes
  std::vector<int64_t> red_sizes, red_strides;    // coalesced where possible; never empty
  int64_t numel_out = 1, numel_red = 1;
};

/// Geometry of reducing `in` over sorted, unique `dims`.
ReduceGeometry make_reduce_geometry(const Tensor& in, const std::vector<int64_t>& dims);

}  // namespace ember
