// Layer normalisation and RMS normalisation over the trailing M elements of each row as one op
// each way: one kernel forward (a row's mean and variance, then its output), one kernel for the
// input's gradient back (the weight's and bias's gradients are sums over rows, public ops).
// The composite form took about ten launches forward and twenty back.
#pragma once

#include <utility>

#include "ops/op.h"

namespace ember {

/// Inputs: x [rows, M] (contiguous, floating), weight [M] and bias [M] (optional, x's dtype).
/// Outputs: y (x's shape and dtype), the row means [rows] (zero for RMS norm) and
/// 1/sqrt(variance + eps) [rows] (for RMS norm, 1/sqrt(mean(x²) + eps)), both float32 (float64
/// for float64 input).
struct LayerNormOp final : Op {
  bool rms;  // RMS norm: no centring, no bias
  double eps;
  LayerNormOp(bool r, double e) : rms(r), eps(e) {}
  const char* name() const override { return rms ? "rms_norm" : "layer_norm"; }
  bool saves_outputs() const override { return true; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// The input's gradient in one pass: dx = rstd·(g·w − mean(g·w) − x̂·mean(g·w·x̂)) (no mean(g·w)
/// term for RMS norm), x̂ = (x − mean)·rstd. Inputs: x, g (contiguous), weight (optional), mean,
/// rstd. Not differentiable itself: under create_graph the public-op form runs.
struct LayerNormBackwardOp final : Op {
  bool rms;
  explicit LayerNormBackwardOp(bool r) : rms(r) {}
  const char* name() const override { return rms ? "rms_norm_backward" : "layer_norm_backward"; }
  EMBER_OP_FORWARDS
};

/// x + residual and its layer norm in one pass, for inference (graph::fuse_add_layer_norm: a
/// transformer's residual add and the norm after it, one kernel instead of two). Inputs: x and
/// residual [rows, M] (contiguous, floating, one dtype), weight [M] and bias [M] (optional).
/// Outputs: y, and the sum (both x's shape and dtype). The sum is rounded to x's dtype before it
/// is normalised, as the separate add and norm round it. Not differentiable: nn::add_layer_norm
/// runs the add and the norm apart where autograd records.
struct AddLayerNormOp final : Op {
  double eps;
  explicit AddLayerNormOp(double e) : eps(e) {}
  const char* name() const override { return "add_layer_norm"; }
  EMBER_OP_FORWARDS
};

/// Normalises the last `normalized` elements of x (as nn::layer_norm and nn::rms_norm, which
/// check the shapes and call this).
Tensor layer_norm_rows(const Tensor& x, int64_t normalized, const Tensor& weight, const Tensor& bias, double eps,
                       bool rms);
/// {layer norm of x + residual, x + residual} over the last `normalized` elements, in one
/// AddLayerNormOp (nn::add_layer_norm checks the shapes and calls this).
std::pair<Tensor, Tensor> add_layer_norm_rows(const Tensor& x, const Tensor& residual, int64_t normalized,
                                              const Tensor& weight, const Tensor& bias, double eps);

}  // namespace ember
