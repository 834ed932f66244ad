#include "nn/vision_modules.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "nn/init.h"
#include "ops/binary.h"
#include "ops/creation.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember::nn {

namespace {

// PyTorch's conv initialisation: weight kaiming-uniform with a = √5, bias U(±1/√fan_in), where
// fan_in is the weight's dim 1 times its kernel size.
void init_conv(Module&, const Tensor& weight, const Tensor& bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (!bias.defined()) return;
  int64_t fan_in = weight.sizes()[1];
  for (int64_t d = 2; d < weight.dim(); ++d) fan_in *= weight.sizes()[d];
  const double bound = fan_in > 0 ? 1 / std::sqrt(static_cast<double>(fan_in)) : 0;
  init::uniform_(bias, -bound, bound);
}

TensorOptions float_options(TensorOptions t) {
  if (!t.dtype) t.dtype = kFloat32;
  return t;
}

}  // namespace

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel, Conv2dOptions options, TensorOptions t)
    : options_(options) {
  EMBER_CHECK(in_channels > 0 && out_channels > 0 && options.groups > 0 && in_channels % options.groups == 0 &&
                  out_channels % options.groups == 0,
              InvalidArgument, "[Conv2d] channels (", in_channels, ", ", out_channels,
              ") must be positive and divisible by groups (", options.groups, ")");
  t = float_options(t);
  Tensor w = empty({out_channels, in_channels / options.groups, kernel[0], kernel[1]}, t);
  Tensor b = options.bias ? empty({out_channels}, t) : Tensor();
  init_conv(*this, w, b);
  register_parameter("weight", w);
  if (options.bias) register_parameter("bias", b);
}

Tensor Conv2d::forward(const Tensor& x) {
  if (options_.padding_mode)
    return conv2d(x, weight(), bias(), options_.stride, *options_.padding_mode, options_.dilation, options_.groups);
  return conv2d(x, weight(), bias(), options_.stride, options_.padding, options_.dilation, options_.groups);
}

Conv1d::Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
               int64_t dilation, int64_t groups, bool bias, TensorOptions t)
    : stride_(stride), padding_(padding), dilation_(dilation), groups_(groups), bias_(bias) {
  EMBER_CHECK(in_channels > 0 && out_channels > 0 && groups > 0 && in_channels % groups == 0 &&
                  out_channels % groups == 0,
              InvalidArgument, "[Conv1d] channels (", in_channels, ", ", out_channels,
              ") must be positive and divisible by groups (", groups, ")");
  t = float_options(t);
  Tensor w = empty({out_channels, in_channels / groups, kernel}, t);
  Tensor b = bias ? empty({out_channels}, t) : Tensor();
  init_conv(*this, w, b);
  register_parameter("weight", w);
  if (bias) register_parameter("bias", b);
}

Tensor Conv1d::forward(const Tensor& x) {
  return conv1d(x, param(0), bias_ ? param(1) : Tensor(), stride_, padding_, dilation_, groups_);
}

ConvTranspose2d::ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel, Pair stride, Pair padding,
                                 Pair output_padding, int64_t groups, bool bias, Pair dilation, TensorOptions t)
    : stride_(stride), padding_(padding), output_padding_(output_padding), dilation_(dilation), groups_(groups),
      bias_(bias) {
  EMBER_CHECK(in_channels > 0 && out_channels > 0 && groups > 0 && in_channels % groups == 0 &&
                  out_channels % groups == 0,
              InvalidArgument, "[ConvTranspose2d] channels (", in_channels, ", ", out_channels,
              ") must be positive and divisible by groups (", groups, ")");
  t = float_options(t);
  Tensor w = empty({in_channels, out_channels / groups, kernel[0], kernel[1]}, t);
  Tensor b = bias ? empty({out_channels}, t) : Tensor();
  init_conv(*this, w, b);
  register_parameter("weight", w);
  if (bias) register_parameter("bias", b);
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  return conv_transpose2d(x, param(0), bias_ ? param(1) : Tensor(), stride_, padding_, output_padding_, groups_,
                          dilation_);
}

BatchNorm2d::BatchNorm2d(int64_t num_features, double eps, double momentum, bool affine, TensorOptions t)
    : eps_(eps), momentum_(momentum), affine_(affine) {
  EMBER_CHECK(num_features > 0, InvalidArgument, "[BatchNorm] num_features must be positive, got ", num_features);
  t = float_options(t);
  if (affine) {
    register_parameter("weight", ones({num_features}, t));
    register_parameter("bias", zeros({num_features}, t));
  }
  register_buffer("running_mean", zeros({num_features}, t));
  register_buffer("running_var", ones({num_features}, t));
  register_buffer("num_batches_tracked", zeros({}, {kInt64, t.device}));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() == expected_dims_ || (expected_dims_ == 3 && x.dim() == 2), ShapeMismatch, "[BatchNorm",
              expected_dims_ == 4 ? "2d" : "1d", "] expected ", expected_dims_ == 4 ? "[N, C, H, W]" : "[N, C] or [N, C, L]",
              ", got shape ", shape_str(x.sizes()));
  if (is_training()) {
    NoGradGuard no_grad;
    add_(buffer(2), 1);
  }
  return batch_norm(x, buffer(0), buffer(1), affine_ ? param(0) : Tensor(), affine_ ? param(1) : Tensor(),
                    is_training(), momentum_, eps_);
}

BatchNorm1d::BatchNorm1d(int64_t num_features, double eps, double momentum, bool affine, TensorOptions t)
    : BatchNorm2d(num_features, eps, momentum, affine, t) {
  expected_dims_ = 3;
}

Tensor BatchNorm1d::forward(const Tensor& x) { return BatchNorm2d::forward(x); }

GroupNorm::GroupNorm(int64_t num_groups, int64_t num_channels, double eps, bool affine, TensorOptions t)
    : groups_(num_groups), eps_(eps), affine_(affine) {
  EMBER_CHECK(num_groups > 0 && num_channels % num_groups == 0, InvalidArgument, "[GroupNorm] ", num_channels,
              " channels are not divisible into ", num_groups, " groups");
  t = float_options(t);
  if (affine) {
    register_parameter("weight", ones({num_channels}, t));
    register_parameter("bias", zeros({num_channels}, t));
  }
}

Tensor GroupNorm::forward(const Tensor& x) {
  return group_norm(x, groups_, affine_ ? param(0) : Tensor(), affine_ ? param(1) : Tensor(), eps_);
}

Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, kernel_, stride_, padding_, dilation_, ceil_mode_); }

Tensor AvgPool2d::forward(const Tensor& x) {
  return avg_pool2d(x, kernel_, stride_, padding_, ceil_mode_, count_include_pad_);
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, size_); }

Tensor Upsample::forward(const Tensor& x) {
  Pair size = size_;
  if (size[0] == 0 && size[1] == 0) {
    EMBER_CHECK(scale_ > 0 && x.dim() == 4, InvalidArgument, "[Upsample] needs a size or a positive scale_factor");
    size = {static_cast<int64_t>(std::floor(x.sizes()[2] * scale_)), static_cast<int64_t>(std::floor(x.sizes()[3] * scale_))};
  }
  return interpolate(x, size, mode_, align_corners_);
}

}  // namespace ember::nn
