// The shared CPU element-wise loop: every element-wise kernel is a functor plus one call to
// `elementwise` (the geometry is shared with CUDA: ops/geometry.h).
#pragma once

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "ops/geometry.h"
#include "runtime/parallel.h"

namespace ember::cpu {

using ember::Geometry;
using ember::make_geometry;

/// Calls loop(ptrs, inner_strides, n) over the elements [begin, end) in row-major order, one
/// call per run along the innermost dim.
template <int N, typename Loop>
void for_each_run(const Geometry<N>& g, int64_t begin, int64_t end, Loop& loop) {
  const int64_t nd = static_cast<int64_t>(g.sizes.size());
  const int64_t inner = g.sizes[nd - 1];
  std::vector<int64_t> idx(nd);
  int64_t rem = begin;
  for (int64_t d = nd; d-- > 0;) {
    idx[d] = rem % g.sizes[d];
    rem /= g.sizes[d];
  }
  std::array<char*, N> ptrs;
  std::array<int64_t, N> inner_strides = g.strides[nd - 1];
  int64_t pos = begin;
  while (pos < end) {
    for (int i = 0; i < N; ++i) {
      char* p = g.data[i];
      for (int64_t d = 0; d < nd; ++d) p += idx[d] * g.strides[d][i];
      ptrs[i] = p;
    }
    int64_t n = std::min(inner - idx[nd - 1], end - pos);
    loop(ptrs.data(), inner_strides.data(), n);
    pos += n;
    idx[nd - 1] += n;
    for (int64_t d = nd - 1; d > 0 && idx[d] == g.sizes[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
    }
  }
}

template <typename Out, typename... In, typename F, size_t... I>
inline void typed_run(char* const* p, const int64_t* s, int64_t n, const F& f,
                      std::index_sequence<I...>) {
  const bool contiguous = s[0] == sizeof(Out) && ((s[I + 1] == sizeof(In)) && ...);
  if (contiguous) {
    // A local copy of the functor: its parameters (a clamp's bounds) are then known not to
    // change under the stores, so they are read once and the loop can be vectorised; through
    // the reference `f` they were reloaded (and converted) per element. (No restrict: in-place
    // ops pass the same memory as input and output.)
    const F fn = f;
    Out* out = reinterpret_cast<Out*>(p[0]);
    for (int64_t k = 0; k < n; ++k) out[k] = fn(reinterpret_cast<const In*>(p[I + 1])[k]...);
  } else {
    for (int64_t k = 0; k < n; ++k)
      *reinterpret_cast<Out*>(p[0] + k * s[0]) =
          f(*reinterpret_cast<const In*>(p[I + 1] + k * s[I + 1])...);
  }
}

/// out[i] = f(in[0][i], in[1][i], ...) over out's shape; inputs broadcast to it. The element
/// types must match the tensors' dtypes (the caller dispatched on them).
template <typename Out, typename... In, typename F>
void elementwise(const Tensor& out, const std::array<Tensor, sizeof...(In)>& in, const F& f) {
  constexpr int N = 1 + sizeof...(In);
  std::array<const Tensor*, N> ops{&out};
  for (size_t i = 0; i < sizeof...(In); ++i) ops[i + 1] = &in[i];
  Geometry<N> g = make_geometry<N>(out.sizes(), ops);
  if (g.numel == 0) return;
  auto loop = [&f](char* const* p, const int64_t* s, int64_t n) {
    typed_run<Out, In...>(p, s, n, f, std::index_sequence_for<In...>{});
  };
  parallel_for(0, g.numel, kGrainSize, [&](int64_t b, int64_t e) { for_each_run(g, b, e, loop); });
}

}  // namespace ember::cpu

namespace ember::cpu {

/// Runs loop(ptrs, inner_strides, n) over operands iterated with `shape` (operands must have
/// exactly `shape`, or broadcast to it). For kernels that index through pointers (gather,
/// scatter). `parallel = false` keeps row-major order on one thread (scatter determinism).
template <int N, typename Loop>
void for_each_pointer(const Shape& shape, const std::array<const Tensor*, N>& ops, Loop&& loop,
                      bool parallel = true) {
  Geometry<N> g = make_geometry<N>(shape, ops);
  if (g.numel == 0) return;
  if (!parallel) {
    for_each_run(g, 0, g.numel, loop);
    return;
  }
  parallel_for(0, g.numel, kGrainSize, [&](int64_t b, int64_t e) { for_each_run(g, b, e, loop); });
}

}  // namespace ember::cpu
