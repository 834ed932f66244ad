#include "ops/geometry.h"

#include <algorithm>

namespace ember {

ReduceGeometry make_reduce_geometry(const Tensor& in, const std::vector<int64_t>& dims) {
  ReduceGeometry g;
  const int64_t item = static_cast<int64_t>(in.itemsize());
  for (int64_t d = 0; d < in.dim(); ++d) {
    int64_t size = in.sizes()[d], stride = in.strides()[d] * item;
    bool reduced = std::binary_search(dims.begin(), dims.end(), d);
    auto& sizes = reduced ? g.red_sizes : g.kept_sizes;
    auto& strides = reduced ? g.red_strides : g.kept_strides;
    if (reduced && size == 1) continue;  // reduces nothing
    // Merge with the previous dim of the same kind when contiguous with it.
    if (reduced && !sizes.empty() && strides.back() == stride * size) {
      sizes.back() *= size;
      strides.back() = stride;
      continue;
    }
    sizes.push_back(size);
    strides.push_back(stride);
  }
  g.numel_red = 1;
  for (int64_t s : g.red_sizes) g.numel_red *= s;
  g.numel_out = 1;
  for (int64_t s : g.kept_sizes) g.numel_out *= s;
  if (g.red_sizes.empty()) {
    g.red_sizes.push_back(1);
    g.red_strides.push_back(0);
  }
  return g;
}

}  // namespace ember
