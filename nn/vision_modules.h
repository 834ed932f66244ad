// Convolutional-network modules with PyTorch's parameter names, buffers and default
// initialisation: Conv1d, Conv2d, ConvTranspose2d, BatchNorm1d/2d, GroupNorm, MaxPool2d,
// AvgPool2d, AdaptiveAvgPool2d, Upsample.
#pragma once

#include <optional>
#include <string>

#include "nn/module.h"
#include "nn/vision.h"

namespace ember::nn {

struct Conv2dOptions {
  Pair stride{1, 1}, padding{0, 0}, dilation{1, 1};
  std::optional<Padding> padding_mode = std::nullopt;  // "same" or "valid" instead of numbers, when set
  int64_t groups = 1;
  bool bias = true;
};

/// weight [O, C/groups, KH, KW] and bias [O], kaiming-uniform (a = √5) as PyTorch.
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel, Conv2dOptions options = {}, TensorOptions t = {});
  Tensor forward(const Tensor& x) override;
  const Tensor& weight() const { return param(0); }
  Tensor bias() const { return options_.bias ? param(1) : Tensor(); }

 private:
  Conv2dOptions options_;
};

class Conv1d : public Module {
 public:
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
         int64_t dilation = 1, int64_t groups = 1, bool bias = true, TensorOptions t = {});
  Tensor forward(const Tensor& x) override;

 private:
  int64_t stride_, padding_, dilation_, groups_;
  bool bias_;
};

/// weight [C_in, C_out/groups, KH, KW].
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel, Pair stride = {1, 1}, Pair padding = {0, 0},
                  Pair output_padding = {0, 0}, int64_t groups = 1, bool bias = true, Pair dilation = {1, 1},
                  TensorOptions t = {});
  Tensor forward(const Tensor& x) override;

 private:
  Pair stride_, padding_, output_padding_, dilation_;
  int64_t groups_;
  bool bias_;
};

/// weight (ones), bias (zeros); buffers running_mean, running_var, num_batches_tracked.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                       TensorOptions t = {});
  Tensor forward(const Tensor& x) override;

 protected:
  int64_t expected_dims_ = 4;

 private:
  double eps_, momentum_;
  bool affine_;
};

/// BatchNorm over [N, C] or [N, C, L].
class BatchNorm1d : public BatchNorm2d {
 public:
  explicit BatchNorm1d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                       TensorOptions t = {});
  Tensor forward(const Tensor& x) override;
};

class GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true, TensorOptions t = {});
  Tensor forward(const Tensor& x) override;

 private:
  int64_t groups_;
  double eps_;
  bool affine_;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Pair kernel, Pair stride = {0, 0}, Pair padding = {0, 0}, Pair dilation = {1, 1},
                     bool ceil_mode = false)
      : kernel_(kernel), stride_(stride), padding_(padding), dilation_(dilation), ceil_mode_(ceil_mode) {}
  Tensor forward(const Tensor& x) override;

 private:
  Pair kernel_, stride_, padding_, dilation_;
  bool ceil_mode_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Pair kernel, Pair stride = {0, 0}, Pair padding = {0, 0}, bool ceil_mode = false,
                     bool count_include_pad = true)
      : kernel_(kernel), stride_(stride), padding_(padding), ceil_mode_(ceil_mode), count_include_pad_(count_include_pad) {}
  Tensor forward(const Tensor& x) override;

 private:
  Pair kernel_, stride_, padding_;
  bool ceil_mode_, count_include_pad_;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Pair output_size) : size_(output_size) {}
  Tensor forward(const Tensor& x) override;

 private:
  Pair size_;
};

class Upsample : public Module {
 public:
  /// To a fixed size, or by a scale factor (size {0, 0}).
  Upsample(Pair size, std::string mode = "nearest", bool align_corners = false, double scale_factor = 0)
      : size_(size), mode_(std::move(mode)), align_corners_(align_corners), scale_(scale_factor) {}
  Tensor forward(const Tensor& x) override;

 private:
  Pair size_;
  std::string mode_;
  bool align_corners_;
  double scale_;
};

}  // namespace ember::nn
