// 2-d max pooling as one op with its indices, as PyTorch's max_pool2d_with_indices: on CUDA one
// thread per output window forward and one per input element backward (gathering from the
// windows that chose it, so the sum is deterministic); on the CPU one pass over each window
// forward (ops/cpu/pool.cpp) and a scatter-add backward. The public-op form
// (max_pool2d_reference) materialises every window (nine times the output for a 3×3 kernel).
#pragma once

#include <array>

#include "ops/op.h"

namespace ember {

struct PoolParams {
  std::array<int64_t, 2> kernel, stride, padding, dilation;
  bool ceil_mode;
};

/// Input x [N, C, H, W]; outputs the window maxima [N, C, OH, OW] and their flat indices into
/// each input plane (int64), the first maximum of each window, NaN winning as in PyTorch.
struct MaxPool2dOp final : Op {
  PoolParams params;
  Shape input_shape;
  // The indices backward needs, kept here rather than by saving the outputs, so that the values
  // may be modified in place before backward.
  Tensor saved_indices;
  MaxPool2dOp(PoolParams p, Shape in) : params(p), input_shape(std::move(in)) {}
  const char* name() const override { return "max_pool2d"; }
  bool saves_inputs() const override { return false; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// The input gradient of MaxPool2dOp. Inputs: grad [N, C, OH, OW], indices; output x's shape.
/// Not differentiable itself: under create_graph the public-op form (a scatter-add) runs.
struct MaxPool2dBackwardOp final : Op {
  PoolParams params;
  explicit MaxPool2dBackwardOp(PoolParams p) : params(p) {}
  const char* name() const override { return "max_pool2d_backward"; }
  EMBER_OP_FORWARDS
};

/// The same values and indices from public ops (a max over materialised windows): the tests'
/// reference for the CPU and CUDA kernels.
std::pair<Tensor, Tensor> max_pool2d_reference(const Tensor& x, const PoolParams& params);

/// Runs MaxPool2dOp after checking the arguments: {values, indices}.
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const PoolParams& params);

}  // namespace ember
