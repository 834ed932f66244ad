// The shared CPU reduction loop. A reducer says how to start, step and combine accumulators;
// `reduce` walks the input once per output element over the reduced dims.
//
// Determinism: the reduced range of every output is cut into fixed chunks of kReduceChunk
// elements, each chunk is accumulated in order and the chunks are combined in order. The chunk
// boundaries do not depend on the thread count, so results are the same bits on 1 or 64 threads.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ops/geometry.h"
#include "runtime/parallel.h"

namespace ember::cpu {

inline constexpr int64_t kReduceChunk = 16384;

using ember::ReduceGeometry;
using ember::make_reduce_geometry;

/// Byte offset of output element `o` (row-major over the kept dims).
inline int64_t kept_offset(const ReduceGeometry& g, int64_t o) {
  int64_t off = 0;
  for (size_t d = g.kept_sizes.size(); d-- > 0;) {
    off += (o % g.kept_sizes[d]) * g.kept_strides[d];
    o /= g.kept_sizes[d];
  }
  return off;
}

/// Accumulates the reduced elements [begin, end) starting at `base`.
template <typename T, typename Reducer>
typename Reducer::Acc reduce_span(const ReduceGeometry& g, const char* base, int64_t begin,
                                  int64_t end, const Reducer& r, typename Reducer::Acc acc) {
  if (begin >= end) return acc;  // also covers reductions over a size-0 dim
  const size_t nd = g.red_sizes.size();
  const int64_t inner = g.red_sizes[nd - 1], inner_stride = g.red_strides[nd - 1];
  std::vector<int64_t> idx(nd);
  int64_t rem = begin;
  for (size_t d = nd; d-- > 0;) {
    idx[d] = rem % g.red_sizes[d];
    rem /= g.red_sizes[d];
  }
  int64_t pos = begin;
  while (pos < end) {
    const char* p = base;
    for (size_t d = 0; d < nd; ++d) p += idx[d] * g.red_strides[d];
    int64_t n = std::min(inner - idx[nd - 1], end - pos);
    if (inner_stride == static_cast<int64_t>(sizeof(T))) {
      const T* q = reinterpret_cast<const T*>(p);
      for (int64_t k = 0; k < n; ++k) acc = r.step(acc, q[k], pos + k);
    } else {
      for (int64_t k = 0; k < n; ++k)
        acc = r.step(acc, *reinterpret_cast<const T*>(p + k * inner_stride), pos + k);
    }
    pos += n;
    idx[nd - 1] += n;
    for (size_t d = nd - 1; d > 0 && idx[d] == g.red_sizes[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
    }
  }
  return acc;
}

/// Reduces `in` (element type T) over `dims` (sorted, unique, may be empty: then every output
/// element reduces one input element) and calls emit(o, acc) for each output element o.
template <typename T, typename Reducer, typename Emit>
void reduce(const Tensor& in, const std::vector<int64_t>& dims, const Reducer& r, const Emit& emit) {
  using Acc = typename Reducer::Acc;
  const ReduceGeometry g = make_reduce_geometry(in, dims);
  const char* data = static_cast<const char*>(in.data());
  const int64_t L = g.numel_red;
  const int64_t chunks = std::max<int64_t>(1, (L + kReduceChunk - 1) / kReduceChunk);
  if (L == 0) {
    // An empty range: every output is the identity. (The data pointer of an empty input may be
    // null, and offsetting it is undefined behaviour, which UBSan reports.)
    for (int64_t o = 0; o < g.numel_out; ++o) emit(o, r.identity());
    return;
  }

  auto reduce_one = [&](int64_t o) {
    const char* base = data + kept_offset(g, o);
    Acc acc = reduce_span<T>(g, base, 0, std::min(L, kReduceChunk), r, r.identity());
    for (int64_t c = 1; c < chunks; ++c) {
      Acc part = reduce_span<T>(g, base, c * kReduceChunk, std::min(L, (c + 1) * kReduceChunk), r,
                                r.identity());
      acc = r.combine(acc, part);
    }
    return acc;
  };

  if (g.numel_out >= 4 * get_num_threads() || chunks == 1) {
    int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(L, 1));
    parallel_for(0, g.numel_out, grain, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) emit(o, reduce_one(o));
    });
    return;
  }
  // Few outputs, long reductions: parallel over the chunks of each output.
  // Not std::vector: vector<bool> packs bits, and threads write neighbouring parts.
  std::unique_ptr<Acc[]> parts(new Acc[chunks]);
  for (int64_t o = 0; o < g.numel_out; ++o) {
    const char* base = data + kept_offset(g, o);
    parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c)
        parts[c] = reduce_span<T>(g, base, c * kReduceChunk, std::min(L, (c + 1) * kReduceChunk), r,
                                  r.identity());
    });
    Acc acc = parts[0];
    for (int64_t c = 1; c < chunks; ++c) acc = r.combine(acc, parts[c]);
    emit(o, acc);
  }
}

}  // namespace ember::cpu
