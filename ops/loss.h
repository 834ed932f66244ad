// Fused cross-entropy over class indices: one pass over each row of logits gives the row's
// loss and its log-sum-exp, one pass back gives the row's gradient. The composite form costs
// about twenty launches each way and never fits a large vocabulary's softmax in cache; this is
// what nn::cross_entropy uses for class-index targets.
#pragma once

#include "ops/op.h"

namespace ember {

/// Inputs: logits [N, C] (floating), target [N] (int64), weight [C] (optional, logits' dtype).
/// Outputs, each [N]: the row's loss (1−ε)·w[y]·(lse − x[y]) + ε/C·Σ_c w_c·(lse − x_c), the
/// row's weight w[y], and lse; rows whose target is ignore_index give 0 and 0. A target
/// outside [0, C) is an InvalidArgument on the CPU; on CUDA the row's loss is NaN and the
/// error is raised by the next cross_entropy call on that device (no host sync per step).
struct CrossEntropyOp final : Op {
  int64_t ignore_index;
  double label_smoothing;
  CrossEntropyOp(int64_t ignore, double smoothing) : ignore_index(ignore), label_smoothing(smoothing) {}
  const char* name() const override { return "cross_entropy"; }
  bool saves_outputs() const override { return true; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// The gradient of CrossEntropyOp's row losses with respect to the logits, in one pass.
/// Inputs: logits, target, weight (optional), lse [N], grads of the row losses [N] and of lse
/// [N] (zero except in higher-order gradients).
/// Not differentiable itself: a backward under create_graph uses the composite form instead.
struct CrossEntropyBackwardOp final : Op {
  int64_t ignore_index;
  double label_smoothing;
  CrossEntropyBackwardOp(int64_t ignore, double smoothing) : ignore_index(ignore), label_smoothing(smoothing) {}
  const char* name() const override { return "cross_entropy_backward"; }
  EMBER_OP_FORWARDS
};

/// Runs CrossEntropyOp after checking shapes and dtypes: {row losses, row weights}.
std::pair<Tensor, Tensor> cross_entropy_rows(const Tensor& logits, const Tensor& target, const Tensor& weight,
                                            int64_t ignore_index, double label_smoothing);

}  // namespace ember
