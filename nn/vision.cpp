#include "nn/vision.h"

#include <cmath>
#include <limits>
#include <vector>

#include "autograd/grad_mode.h"
#include "ops/binary.h"
#include "ops/conv.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/index.h"
#include "ops/join.h"
#include "ops/layout.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/unary.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember::nn {

namespace {

void check_input(const Tensor& x, int64_t dims, const char* op) {
  EMBER_CHECK(x.dim() == dims, ShapeMismatch, "[", op, "] expected a ", dims, "-d input (",
              dims == 4 ? "[N, C, H, W]" : "[N, C, L]", "), got shape ", shape_str(x.sizes()));
  EMBER_CHECK(is_floating(x.dtype()), DTypeMismatch, "[", op, "] expected a floating input, got ", x.dtype());
}

void check_positive(Pair p, const char* what, const char* op, int64_t minimum = 1) {
  EMBER_CHECK(p[0] >= minimum && p[1] >= minimum, InvalidArgument, "[", op, "] ", what, " must be >= ", minimum,
              ", got (", p[0], ", ", p[1], ")");
}

Shape channel_shape(const Tensor& x) {
  Shape s(x.dim(), 1);
  s[1] = x.sizes()[1];
  return s;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding, Pair dilation,
              int64_t groups) {
  return ember::conv2d(x, weight, bias, stride, padding, dilation, groups);
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Padding padding,
              Pair dilation, int64_t groups) {
  if (padding == Padding::Valid) return nn::conv2d(x, weight, bias, stride, Pair{0, 0}, dilation, groups);
  EMBER_CHECK(stride[0] == 1 && stride[1] == 1, InvalidArgument, "[conv2d] padding=\"same\" needs stride 1");
  EMBER_CHECK(weight.dim() == 4, ShapeMismatch, "[conv2d] expected a weight [O, C/groups, KH, KW], got shape ",
              shape_str(weight.sizes()));
  const int64_t th = dilation[0] * (weight.sizes()[2] - 1), tw = dilation[1] * (weight.sizes()[3] - 1);
  // An odd total pads one more at the bottom and right, as PyTorch does.
  Tensor xp = pad(x, {tw / 2, tw - tw / 2, th / 2, th - th / 2});
  return nn::conv2d(xp, weight, bias, stride, Pair{0, 0}, dilation, groups);
}

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
              int64_t dilation, int64_t groups) {
  check_input(x, 3, "conv1d");
  EMBER_CHECK(weight.dim() == 3, ShapeMismatch, "[conv1d] expected a weight [O, C/groups, K], got shape ",
              shape_str(weight.sizes()));
  return squeeze(nn::conv2d(unsqueeze(x, 2), unsqueeze(weight, 2), bias, Pair{1, stride}, Pair{0, padding},
                        Pair{1, dilation}, groups),
                 2);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding,
                        Pair output_padding, int64_t groups, Pair dilation) {
  return ember::conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation);
}

PoolResult max_pool2d_with_indices(const Tensor& x, Pair kernel, Pair stride, Pair padding, Pair dilation,
                                   bool ceil_mode) {
  if (stride[0] == 0 && stride[1] == 0) stride = kernel;
  auto [values, indices] = ember::max_pool2d_with_indices(x, {kernel, stride, padding, dilation, ceil_mode});
  return {values, indices};
}

Tensor max_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding, Pair dilation, bool ceil_mode) {
  return max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceil_mode).values;
}

Tensor avg_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding, bool ceil_mode, bool count_include_pad,
                  std::optional<int64_t> divisor_override) {
  check_input(x, 4, "avg_pool2d");
  if (stride[0] == 0 && stride[1] == 0) stride = kernel;
  check_positive(kernel, "kernel_size", "avg_pool2d");
  check_positive(stride, "stride", "avg_pool2d");
  for (int i = 0; i < 2; ++i)
    EMBER_CHECK(padding[i] >= 0 && padding[i] <= kernel[i] / 2, InvalidArgument,
                "[avg_pool2d] padding must be at most half the kernel size, got ", padding[i]);
  const int64_t h = x.sizes()[2], w = x.sizes()[3];
  const int64_t oh = window_count(h, kernel[0], stride[0], padding[0], 1, ceil_mode, "avg_pool2d");
  const int64_t ow = window_count(w, kernel[1], stride[1], padding[1], 1, ceil_mode, "avg_pool2d");
  const int64_t extra_h = std::max<int64_t>(0, (oh - 1) * stride[0] + kernel[0] - (h + 2 * padding[0]));
  const int64_t extra_w = std::max<int64_t>(0, (ow - 1) * stride[1] + kernel[1] - (w + 2 * padding[1]));
  const std::vector<int64_t> pads = {padding[1], padding[1] + extra_w, padding[0], padding[0] + extra_h};
  Tensor sums = sum(sliding_windows(pad(x, pads), kernel, stride, {1, 1}, oh, ow), {4, 5});
  if (divisor_override) {
    EMBER_CHECK(*divisor_override != 0, InvalidArgument, "[avg_pool2d] divisor_override must not be 0");
    return div(sums, static_cast<double>(*divisor_override));
  }
  // The divisor of each window: its cells inside the padded input (count_include_pad) or
  // inside the input itself; the extra cells of ceil_mode never count.
  Tensor ones_plane = ones({1, 1, h, w}, {x.dtype(), x.device()});
  Tensor counted = count_include_pad ? pad(pad(ones_plane, {padding[1], padding[1], padding[0], padding[0]}, 1),
                                           {0, extra_w, 0, extra_h})
                                     : pad(ones_plane, pads);
  Tensor divisor = sum(sliding_windows(counted, kernel, stride, {1, 1}, oh, ow), {4, 5});
  return div(sums, divisor);
}

namespace {

// Rows [start, end) of PyTorch's adaptive pooling cell i of n over a length `in`.
std::pair<int64_t, int64_t> adaptive_range(int64_t i, int64_t n, int64_t in) {
  return {(i * in) / n, ((i + 1) * in + n - 1) / n};
}

// out × in elements for a resampling matrix, refused past 2^28 (a 1 GiB float32 matrix).
size_t matrix_elements(int64_t out, int64_t in, const char* op) {
  int64_t n = 0;
  EMBER_CHECK(in >= 1 && out >= 1 && !__builtin_mul_overflow(out, in, &n) && n <= (int64_t{1} << 28), InvalidArgument,
              "[", op, "] cannot resample a length of ", in, " to ", out);
  return static_cast<size_t>(n);
}

// The [out, in] matrix averaging each adaptive cell.
// Built in a tensor, so a size beyond memory is ember's OutOfMemory (an output size read from
// a damaged model file reached std::bad_alloc through a std::vector here).
Tensor averaging_matrix(int64_t out, int64_t in, const Tensor& like) {
  matrix_elements(out, in, "adaptive_avg_pool2d");
  Tensor m = zeros({out, in}, {kFloat64});
  double* v = m.data_ptr<double>();
  for (int64_t i = 0; i < out; ++i) {
    auto [s, e] = adaptive_range(i, out, in);
    for (int64_t j = s; j < e; ++j) v[i * in + j] = 1.0 / static_cast<double>(e - s);
  }
  return m.to(like.dtype()).to(like.device());
}

}  // namespace

Tensor adaptive_avg_pool2d(const Tensor& x, Pair output_size) {
  check_input(x, 4, "adaptive_avg_pool2d");
  check_positive(output_size, "output_size", "adaptive_avg_pool2d");
  const int64_t h = x.sizes()[2], w = x.sizes()[3];
  EMBER_CHECK(h >= 1 && w >= 1, ShapeMismatch, "[adaptive_avg_pool2d] cannot pool an empty plane ", shape_str(x.sizes()));
  if (output_size[0] == 1 && output_size[1] == 1) return mean(x, {2, 3}, true);  // global pooling
  // Separable: rows averaged by one matrix product, columns by another.
  Tensor rows = matmul(averaging_matrix(output_size[0], h, x), x);
  return matmul(rows, averaging_matrix(output_size[1], w, x).transpose(0, 1));
}

PoolResult adaptive_max_pool2d(const Tensor& x, Pair output_size) {
  check_input(x, 4, "adaptive_max_pool2d");
  check_positive(output_size, "output_size", "adaptive_max_pool2d");
  const int64_t n = x.sizes()[0], c = x.sizes()[1], h = x.sizes()[2], w = x.sizes()[3];
  EMBER_CHECK(h >= 1 && w >= 1, ShapeMismatch, "[adaptive_max_pool2d] cannot pool an empty plane ", shape_str(x.sizes()));
  int64_t cells = 0;
  EMBER_CHECK(!__builtin_mul_overflow(output_size[0], output_size[1], &cells) && cells <= (int64_t{1} << 16),
              InvalidArgument, "[adaptive_max_pool2d] output size (", output_size[0], ", ", output_size[1],
              ") is too large for the cell-by-cell path");
  std::vector<Tensor> values, indices;
  for (int64_t i = 0; i < output_size[0]; ++i) {
    auto [r0, r1] = adaptive_range(i, output_size[0], h);
    for (int64_t j = 0; j < output_size[1]; ++j) {
      auto [c0, c1] = adaptive_range(j, output_size[1], w);
      Tensor cell = x.slice(2, r0, r1).slice(3, c0, c1).reshape({n, c, (r1 - r0) * (c1 - c0)});
      auto [v, arg] = max(cell, -1);
      values.push_back(v);
      indices.push_back(add(mul(add(floor_divide(arg, c1 - c0), r0), w), add(remainder(arg, c1 - c0), c0)));
    }
  }
  return {stack(values, -1).reshape({n, c, output_size[0], output_size[1]}),
          stack(indices, -1).reshape({n, c, output_size[0], output_size[1]})};
}

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  return ember::batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps);
}

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps) {
  EMBER_CHECK(x.dim() >= 2 && groups >= 1 && x.sizes()[1] % groups == 0, ShapeMismatch,
              "[group_norm] expected an input [N, C, ...] with C divisible by ", groups, " groups, got shape ",
              shape_str(x.sizes()));
  const int64_t n = x.sizes()[0], c = x.sizes()[1];
  for (const Tensor* t : {&weight, &bias})
    EMBER_CHECK(!t->defined() || (t->dim() == 1 && t->sizes()[0] == c), ShapeMismatch,
                "[group_norm] expected per-channel tensors of shape [", c, "], got ", shape_str(t->sizes()));
  Tensor g = x.reshape({n, groups, -1});
  Tensor y = mul(sub(g, mean(g, {2}, true)), rsqrt(add(var(g, {2}, 0, true), eps))).reshape(x.sizes());
  const Shape cs = channel_shape(x);
  if (weight.defined()) y = mul(y, weight.reshape(cs));
  if (bias.defined()) y = add(y, bias.reshape(cs));
  return y;
}

Tensor instance_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  EMBER_CHECK(x.dim() >= 3, ShapeMismatch, "[instance_norm] expected an input [N, C, ...], got shape ",
              shape_str(x.sizes()));
  return group_norm(x, x.sizes()[1], weight, bias, eps);
}

namespace {

// The [out, in] matrix of bilinear weights along one axis (PyTorch's source-index rules).
Tensor bilinear_matrix(int64_t out, int64_t in, bool align_corners, std::optional<double> scale_factor,
                       const Tensor& like) {
  std::vector<double> m(matrix_elements(out, in, "interpolate"), 0.0);
  // PyTorch's area_pixel_compute_scale: 1/scale_factor when one was given, else in/out.
  const float scale = align_corners ? (out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f)
                      : scale_factor ? static_cast<float>(1.0 / *scale_factor)
                                     : static_cast<float>(in) / static_cast<float>(out);
  for (int64_t i = 0; i < out; ++i) {
    float src = align_corners ? scale * static_cast<float>(i) : scale * (static_cast<float>(i) + 0.5f) - 0.5f;
    if (src < 0) src = 0;
    const int64_t i0 = std::min<int64_t>(static_cast<int64_t>(src), in - 1);
    const int64_t i1 = std::min<int64_t>(i0 + 1, in - 1);
    const double lambda = static_cast<double>(src) - static_cast<double>(i0);
    m[i * in + i0] += 1 - lambda;
    m[i * in + i1] += lambda;
  }
  return from_vector(m, {out, in}, {kFloat64}).to(like.dtype()).to(like.device());
}

Tensor nearest_index(int64_t out, int64_t in, std::optional<double> scale_factor, Device device) {
  matrix_elements(out, in, "interpolate");
  std::vector<int64_t> idx(static_cast<size_t>(out));
  // float, as PyTorch computes it: 1/scale_factor when one was given, else in/out.
  const float scale = scale_factor ? static_cast<float>(1.0 / *scale_factor) : static_cast<float>(in) / static_cast<float>(out);
  for (int64_t i = 0; i < out; ++i)
    idx[i] = std::min<int64_t>(static_cast<int64_t>(std::floor(static_cast<float>(i) * scale)), in - 1);
  return from_vector(idx, {out}, {kInt64}).to(device);
}

}  // namespace

Tensor interpolate(const Tensor& x, Pair size, const std::string& mode, bool align_corners,
                   std::optional<std::array<double, 2>> scale_factors) {
  check_input(x, 4, "interpolate");
  check_positive(size, "size", "interpolate");
  const int64_t h = x.sizes()[2], w = x.sizes()[3];
  EMBER_CHECK(h >= 1 && w >= 1, ShapeMismatch, "[interpolate] cannot resize an empty plane ", shape_str(x.sizes()));
  std::optional<double> sh, sw;
  if (scale_factors) {
    EMBER_CHECK((*scale_factors)[0] > 0 && (*scale_factors)[1] > 0, InvalidArgument,
                "[interpolate] scale factors must be positive");
    sh = (*scale_factors)[0];
    sw = (*scale_factors)[1];
  }
  if (mode == "nearest")
    return index_select(index_select(x, 2, nearest_index(size[0], h, sh, x.device())), 3,
                        nearest_index(size[1], w, sw, x.device()));
  EMBER_CHECK(mode == "bilinear", InvalidArgument, "[interpolate] mode must be \"nearest\" or \"bilinear\", got \"",
              mode, "\"");
  Tensor rows = matmul(bilinear_matrix(size[0], h, align_corners, sh, x), x);
  return matmul(rows, bilinear_matrix(size[1], w, align_corners, sw, x).transpose(0, 1));
}

Tensor pixel_shuffle(const Tensor& x, int64_t r) {
  EMBER_CHECK(r >= 1 && r <= (int64_t{1} << 20), InvalidArgument, "[pixel_shuffle] upscale_factor ", r,
              " is out of range");
  EMBER_CHECK(x.dim() == 4 && x.sizes()[1] % (r * r) == 0, ShapeMismatch,
              "[pixel_shuffle] expected [N, C·r², H, W] with r = ", r, ", got shape ", shape_str(x.sizes()));
  const int64_t n = x.sizes()[0], c = x.sizes()[1] / (r * r), h = x.sizes()[2], w = x.sizes()[3];
  return x.reshape({n, c, r, r, h, w}).permute({0, 1, 4, 2, 5, 3}).reshape({n, c, h * r, w * r});
}

}  // namespace ember::nn
