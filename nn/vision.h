// Convolutional-network functions (PyTorch's F.conv2d, F.max_pool2d, F.batch_norm, ...), NCHW.
// Each is written with ember's public ops — windows are strided views (as_strided) reduced or
// multiplied by the weights — so it runs on every device, records autograd, and gradchecks.
// This is the reference path; cuDNN-backed kernels are to replace the hot ones on CUDA.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "runtime/tensor.h"

namespace ember::nn {

using Pair = std::array<int64_t, 2>;

/// x [N, C, H, W], weight [O, C/groups, KH, KW], bias [O] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Pair stride = {1, 1},
              Pair padding = {0, 0}, Pair dilation = {1, 1}, int64_t groups = 1);
/// PyTorch's padding="same" (stride 1; an odd total puts the extra row/column at the end) and "valid".
enum class Padding { Same, Valid };
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Padding padding,
              Pair dilation = {1, 1}, int64_t groups = 1);
/// x [N, C, L], weight [O, C/groups, K].
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
              int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);
/// x [N, Cin, H, W], weight [Cin, Cout/groups, KH, KW].
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Pair stride = {1, 1},
                        Pair padding = {0, 0}, Pair output_padding = {0, 0}, int64_t groups = 1,
                        Pair dilation = {1, 1});

struct PoolResult {
  Tensor values;
  Tensor indices;  // max pooling: flat indices into each input plane (H·W), as PyTorch returns
};
/// stride defaults to the kernel size (pass {0, 0}).
PoolResult max_pool2d_with_indices(const Tensor& x, Pair kernel, Pair stride = {0, 0}, Pair padding = {0, 0},
                                   Pair dilation = {1, 1}, bool ceil_mode = false);
Tensor max_pool2d(const Tensor& x, Pair kernel, Pair stride = {0, 0}, Pair padding = {0, 0}, Pair dilation = {1, 1},
                  bool ceil_mode = false);
Tensor avg_pool2d(const Tensor& x, Pair kernel, Pair stride = {0, 0}, Pair padding = {0, 0}, bool ceil_mode = false,
                  bool count_include_pad = true, std::optional<int64_t> divisor_override = std::nullopt);
Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size);
PoolResult adaptive_max_pool2d(const Tensor& x, Pair output_size);

/// Batch normalisation over dim 1 of x [N, C, ...]. training: batch statistics, and the running
/// statistics (when given) updated in place with `momentum` (unbiased variance), as PyTorch.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  double eps = 1e-5);
Tensor instance_norm(const Tensor& x, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                     double eps = 1e-5);

/// mode "nearest" or "bilinear" (align_corners applies to bilinear), to `size`. scale_factors
/// (height, width), when the caller resized by factors, set the source-index scale to 1/factor
/// as PyTorch does, instead of in/out.
Tensor interpolate(const Tensor& x, Pair size, const std::string& mode = "nearest", bool align_corners = false,
                   std::optional<std::array<double, 2>> scale_factors = std::nullopt);
Tensor pixel_shuffle(const Tensor& x, int64_t upscale_factor);

}  // namespace ember::nn
