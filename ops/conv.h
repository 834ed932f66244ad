// 2-d convolution as one op: on CUDA through cuDNN (algorithm chosen once per shape and pass,
// workspace from ember's allocator, NCHW or channels-last inputs); on the CPU, and as the
// reference the CUDA kernels are tested against, with public ops (strided windows and a matrix
// product). Backward is two more ops, the input's gradient and the weight's, each one cuDNN call
// on CUDA; under create_graph the same gradients are written with public ops so they can be
// differentiated again.
#pragma once

#include <array>
#include <optional>

#include "ops/op.h"

namespace ember {

using Pair2 = std::array<int64_t, 2>;

/// A convolution's geometry; padding is symmetric.
struct ConvParams {
  Pair2 stride, padding, dilation;
  int64_t groups;
};

/// Inputs: x [N, C, H, W], weight [O, C/groups, KH, KW], bias [O] (optional).
struct Conv2dOp final : Op {
  ConvParams params;
  explicit Conv2dOp(ConvParams p) : params(p) {}
  const char* name() const override { return "conv2d"; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// The gradient of conv2d's input. Inputs: grad [N, O, OH, OW], weight; output: x's shape.
/// Not differentiable itself: a backward under create_graph uses the public-op form.
struct Conv2dBackwardDataOp final : Op {
  ConvParams params;
  explicit Conv2dBackwardDataOp(ConvParams p) : params(p) {}
  const char* name() const override { return "conv2d_backward_data"; }
  EMBER_OP_FORWARDS
};

/// The gradient of conv2d's weight. Inputs: x, grad [N, O, OH, OW]; output: the weight's shape.
struct Conv2dBackwardFilterOp final : Op {
  ConvParams params;
  explicit Conv2dBackwardFilterOp(ConvParams p) : params(p) {}
  const char* name() const override { return "conv2d_backward_filter"; }
  EMBER_OP_FORWARDS
};

/// A convolution's epilogue, fused by the inference pass fuse_conv_activation: in place over a
/// contiguous y [N, C, H, W], y ← clamp(y + bias[c] + residual, lo, hi) in one pass (each part
/// optional; NaN stays NaN, as relu and clamp keep it). Inputs: y, bias [C] or undefined,
/// residual (y's shape and dtype) or undefined; output: y. Inference only: not differentiable.
struct ConvEpilogueOp final : Op {
  std::optional<double> lo, hi;
  ConvEpilogueOp(std::optional<double> lo_, std::optional<double> hi_) : lo(lo_), hi(hi_) {}
  const char* name() const override { return "conv_epilogue"; }
  EMBER_OP_FORWARDS
};

/// x [N, C, H, W], weight [O, C/groups, KH, KW], bias [O] or undefined; symmetric padding.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair2 stride, Pair2 padding, Pair2 dilation,
              int64_t groups);
/// conv2d followed by its epilogue: clamp(conv2d(x, weight, bias) + residual, lo, hi), e.g. a
/// ResNet block's last convolution, its skip connection and relu (lo 0) in one op and one pass
/// after the product. residual: y's shape or undefined. For inference: throws Unsupported if a
/// gradient would be recorded.
Tensor conv2d_fused(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& residual,
                    std::optional<double> lo, std::optional<double> hi, Pair2 stride, Pair2 padding, Pair2 dilation,
                    int64_t groups);
/// The same with public ops only (the CPU kernel and the CUDA kernel's reference).
Tensor conv2d_reference(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair2 stride, Pair2 padding,
                        Pair2 dilation, int64_t groups);
/// conv2d's input gradient from the output gradient `g`, with public ops (differentiable).
Tensor conv2d_input_grad_reference(const Tensor& g, const Tensor& weight, const Shape& x_shape, const ConvParams& p);
/// conv2d's weight gradient, with public ops (differentiable).
Tensor conv2d_weight_grad_reference(const Tensor& x, const Tensor& g, const Shape& w_shape, const ConvParams& p);
/// The [N, C, OH, OW, KH, KW] windows of a (padded) [N, C, H, W] input as a strided view.
Tensor sliding_windows(const Tensor& padded, Pair2 kernel, Pair2 stride, Pair2 dilation, int64_t out_h, int64_t out_w);
/// Windows along a length `in` (PyTorch's pooling_output_shape, ceil_mode included); throws
/// ShapeMismatch naming `op` when the window is larger than the padded input.
int64_t window_count(int64_t in, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation, bool ceil_mode,
                     const char* op);

/// x [N, Cin, H, W], weight [Cin, Cout/groups, KH, KW].
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair2 stride, Pair2 padding,
                        Pair2 output_padding, int64_t groups, Pair2 dilation);

}  // namespace ember
