#include "runtime/shape.h"

#include <algorithm>

#include "runtime/error.h"

namespace ember {

int64_t checked_numel(const Shape& shape, std::string_view op) {
  EMBER_CHECK(static_cast<int64_t>(shape.size()) <= kMaxDims, InvalidArgument, "[", op,
              "] tensors may have at most ", kMaxDims, " dimensions, got ", shape.size());
  int64_t n = 1, span = 1;  // span: the product of max(size, 1), the largest contiguous stride
  for (int64_t s : shape) {
    EMBER_CHECK(s >= 0, InvalidArgument, "[", op, "] negative dimension ", s, " in shape ",
                shape_str(shape));
    EMBER_CHECK(!__builtin_mul_overflow(n, s, &n), InvalidArgument, "[", op,
                "] shape ", shape_str(shape), " has more elements than int64 can count");
    // A zero-size dim makes n 0, but the strides still multiply the other sizes.
    EMBER_CHECK(!__builtin_mul_overflow(span, std::max<int64_t>(s, 1), &span), InvalidArgument, "[", op,
                "] shape ", shape_str(shape), " is too large: its strides do not fit in int64");
  }
  return n;
}

int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

Strides contiguous_strides(const Shape& shape) {
  Strides strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, std::string_view op) {
  int64_t n = std::max<int64_t>(ndim, 1);
  EMBER_CHECK(dim >= -n && dim < n, InvalidArgument, "[", op, "] dimension out of range (expected in [",
              -n, ", ", n - 1, "], got ", dim, ")");
  return dim < 0 ? dim + n : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t sa = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t sb = i < n - b.size() ? 1 : b[i - (n - b.size())];
    EMBER_CHECK(sa == sb || sa == 1 || sb == 1, ShapeMismatch, "[", op, "] shapes ", shape_str(a),
                " and ", shape_str(b), " cannot be broadcast together (dimension ", i, ": ", sa,
                " vs ", sb, ")");
    out[i] = sa == 1 ? sb : sa;
  }
  return out;
}

std::string shape_str(const Shape& shape) { return list_str(shape); }

std::vector<int64_t> reduction_dims(const std::vector<int64_t>& dims, int64_t ndim,
                                    std::string_view op) {
  std::vector<int64_t> out;
  if (dims.empty()) {
    for (int64_t d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) out.push_back(wrap_dim(d, ndim, op));
  std::sort(out.begin(), out.end());
  EMBER_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), InvalidArgument, "[", op,
              "] dimension ", *std::adjacent_find(out.begin(), out.end()),
              " appears more than once in ", list_str(dims));
  if (ndim == 0) out.clear();  // dim 0 / -1 of a 0-d tensor reduces nothing
  return out;
}

}  // namespace ember
