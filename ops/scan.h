// Cumulative sums along a dim. Integer and bool inputs sum in int64 (PyTorch's cumsum), float
// inputs in their own dtype with float (float64 for float64) accumulation.
#pragma once

#include <optional>

#include "ops/op.h"

namespace ember {

/// Input x (contiguous); output the running sums along `dim`, of the output dtype.
struct CumsumOp final : Op {
  int64_t dim;  // wrapped
  explicit CumsumOp(int64_t d) : dim(d) {}
  const char* name() const override { return "cumsum"; }
  bool saves_inputs() const override { return false; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// y[..., i, ...] = Σ_{j <= i} x[..., j, ...] along dim; `dtype` casts the input first.
Tensor cumsum(const Tensor& x, int64_t dim, std::optional<DType> dtype = std::nullopt);

}  // namespace ember
