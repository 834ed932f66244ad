// Sorting along a dim: sort, argsort and topk. Stable (equal values keep their order) and with
// PyTorch's order for NaN: larger than every number (last ascending, first descending). On
// CUDA the rows are sorted by CUB's segmented radix sort; on the CPU by std::stable_sort.
#pragma once

#include "ops/op.h"
#include "ops/reduce.h"  // ValuesIndices

namespace ember {

/// Input x (contiguous, rows along the last dim). Outputs: the sorted values (x's dtype) and
/// their indices in the row (int64).
struct SortOp final : Op {
  bool descending;
  explicit SortOp(bool desc) : descending(desc) {}
  const char* name() const override { return "sort"; }
  bool saves_outputs() const override { return true; }  // backward scatters at the indices
  bool saves_inputs() const override { return false; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// The values of x along dim in order, and where each came from.
ValuesIndices sort(const Tensor& x, int64_t dim = -1, bool descending = false);
/// The indices that sort x along dim.
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
/// The k largest (or smallest) values along dim, in order, and their indices.
ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);

}  // namespace ember
