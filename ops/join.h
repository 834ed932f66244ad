// Joining tensors: cat and stack.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/op.h"

namespace ember {

/// Copies each input into its slice of the output along dim. The same code runs on every
/// device: each slice copy is the device's copy kernel.
struct CatOp final : Op {
  int64_t dim;
  explicit CatOp(int64_t d) : dim(d) {}
  const char* name() const override { return "cat"; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// Concatenates along dim; dtypes promote as in PyTorch; 1-D empty tensors are skipped.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
/// Joins equally shaped tensors along a new dim.
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);

}  // namespace ember
