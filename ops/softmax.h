// Softmax and log-softmax along one dim as one op each way: a pass for the row's maximum and
// sum of exponentials (an online softmax on CUDA), a pass to write. The composite form
// (logsumexp, subtract, exp) took about eight launches forward and five back.
#pragma once

#include "ops/op.h"

namespace ember {

/// Input x (contiguous, floating); output of x's shape and dtype. Half types compute in float.
/// softmax(scale · x); with `causal` (softmax along the last dim of [..., L, S] only) the row
/// at position i of L reads columns j ≤ i, the others counting as −∞ (PyTorch's is_causal):
/// attention's scale and mask inside the one kernel instead of two passes over the scores.
struct SoftmaxOp final : Op {
  int64_t dim;  // wrapped
  bool log;
  double scale = 1;
  int64_t causal_rows = 0;  // L when causal, else 0
  SoftmaxOp(int64_t d, bool lg, double sc = 1, int64_t causal = 0) : dim(d), log(lg), scale(sc), causal_rows(causal) {}
  const char* name() const override { return log ? "log_softmax" : "softmax"; }
  bool saves_outputs() const override { return true; }
  bool saves_inputs() const override { return false; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// SoftmaxOp's gradient in one pass. Inputs: the output y and its gradient g (both contiguous).
/// softmax: scale·y·(g − Σ g·y) (masked positions have y = 0, so no gradient); log_softmax:
/// g − exp(y)·Σ g. Not differentiable itself: under create_graph the public-op form runs.
struct SoftmaxBackwardOp final : Op {
  int64_t dim;
  bool log;
  double scale = 1;
  SoftmaxBackwardOp(int64_t d, bool lg, double sc = 1) : dim(d), log(lg), scale(sc) {}
  const char* name() const override { return log ? "log_softmax_backward" : "softmax_backward"; }
  EMBER_OP_FORWARDS
};

/// exp(x) / Σ exp(x) along dim, computed stably.
Tensor softmax(const Tensor& x, int64_t dim);
/// x − log Σ exp(x) along dim, computed stably.
Tensor log_softmax(const Tensor& x, int64_t dim);
/// Attention's weights: softmax(scale · scores) along the last dim, with PyTorch's causal mask
/// (query i reads keys j ≤ i) when `causal`: what scaling, masked_fill(−∞) and softmax give,
/// in one pass each way.
Tensor attention_softmax(const Tensor& scores, double scale, bool causal);

/// The row geometry of a contiguous tensor reduced along `dim`: outer × size × inner.
struct RowGeometry {
  int64_t outer = 1, size = 1, inner = 1;
};
RowGeometry row_geometry(const Shape& shape, int64_t dim);

}  // namespace ember
