// Views: new sizes/strides/offset over the same storage, no data moved. They work on every
// device because they never touch the data.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "runtime/tensor.h"

namespace ember {

/// Same data, new shape; one dim may be -1 (inferred). Throws when the strides do not allow
/// it (use reshape).
Tensor view(const Tensor& t, const Shape& shape);
/// A view when the strides allow, otherwise a contiguous copy.
Tensor reshape(const Tensor& t, const Shape& shape);
/// Merges dims start..end into one.
Tensor flatten(const Tensor& t, int64_t start_dim = 0, int64_t end_dim = -1);
/// Splits dim into `sizes` (one may be -1).
Tensor unflatten(const Tensor& t, int64_t dim, const Shape& sizes);
Tensor permute(const Tensor& t, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1);
/// Drops size-1 dims: all of them, or only `dim` when given (a no-op when it is not size 1).
Tensor squeeze(const Tensor& t, std::optional<int64_t> dim = std::nullopt);
Tensor unsqueeze(const Tensor& t, int64_t dim);
/// Broadcasts size-1 dims (and new leading dims) to `shape`; -1 keeps a size.
Tensor expand(const Tensor& t, const Shape& shape);
Tensor expand_as(const Tensor& t, const Tensor& other);
/// Python slicing t[start:end:step] along dim (step > 0; start/end clamp like Python).
Tensor slice(const Tensor& t, int64_t dim, std::optional<int64_t> start = std::nullopt,
             std::optional<int64_t> end = std::nullopt, int64_t step = 1);
/// t[index] along dim; the dim is removed.
Tensor select(const Tensor& t, int64_t dim, int64_t index);
/// `length` elements of dim from `start`.
Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length);
/// Pieces of `split_size` along dim (the last may be smaller).
std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim = 0);
/// Pieces of the given sizes along dim (they must sum to the dim's size).
std::vector<Tensor> split(const Tensor& t, const std::vector<int64_t>& sizes, int64_t dim = 0);
/// `chunks` pieces (or fewer) of equal size along dim, the last possibly smaller.
std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim = 0);
/// Every slice along dim, the dim removed.
std::vector<Tensor> unbind(const Tensor& t, int64_t dim = 0);
/// A view with explicit geometry; throws when it reaches outside the storage.
Tensor as_strided(const Tensor& t, const Shape& sizes, const Strides& strides,
                  std::optional<int64_t> offset = std::nullopt);

/// `shape` with a -1 entry resolved for `numel` elements; throws naming `op`.
Shape infer_size(const Shape& shape, int64_t numel, const char* op);

}  // namespace ember
