// 2-d convolution as one op: on CUDA through cuDNN (algorithm chosen once per shape, workspace
// from ember's allocator, any input strides: NCHW or channels-last); on the CPU, and as the
// reference the CUDA kernel is tested against, with public ops (strided windows and a matrix
// product). Backward uses public ops: the input's gradient is a transposed convolution, the
// weight's a product of the windows with the gradient (see Conv2dOp::backward for why these do
// not go through cuDNN yet).
#pragma once

#include <array>

#include "ops/op.h"

namespace ember {

using Pair2 = std::array<int64_t, 2>;

struct Conv2dOp final : Op {
  Pair2 stride, padding, dilation;
  int64_t groups;
  Conv2dOp(Pair2 s, Pair2 p, Pair2 d, int64_t g) : stride(s), padding(p), dilation(d), groups(g) {}
  const char* name() const override { return "conv2d"; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// x [N, C, H, W], weight [O, C/groups, KH, KW], bias [O] or undefined; symmetric padding.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair2 stride, Pair2 padding, Pair2 dilation,
              int64_t groups);
/// The same with public ops only (the CPU kernel and the CUDA kernel's reference).
Tensor conv2d_reference(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair2 stride, Pair2 padding,
                        Pair2 dilation, int64_t groups);
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
