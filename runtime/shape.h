// Shapes, strides and the dimension arithmetic shared by every op.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ember {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;

/// Most dimensions a tensor may have (PyTorch allows 64 too).
inline constexpr int64_t kMaxDims = 64;

/// Product of the sizes; throws InvalidArgument naming `op` when a size is negative or the
/// product overflows int64.
int64_t checked_numel(const Shape& shape, std::string_view op);
/// Product of the sizes (no checks; for shapes already validated).
int64_t numel_of(const Shape& shape);

/// Row-major strides, in elements.
Strides contiguous_strides(const Shape& shape);

/// Wraps a possibly negative dim into [0, ndim); throws naming `op` when out of range.
/// A 0-d tensor accepts dim 0 and -1, as PyTorch does.
int64_t wrap_dim(int64_t dim, int64_t ndim, std::string_view op);

/// Broadcasts two shapes with NumPy/PyTorch rules; throws ShapeMismatch naming `op`.
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);

/// "[2, 3]".
std::string shape_str(const Shape& shape);

/// Wrapped, sorted, duplicate-checked reduction dims; empty `dims` means every dim.
std::vector<int64_t> reduction_dims(const std::vector<int64_t>& dims, int64_t ndim,
                                    std::string_view op);

}  // namespace ember
