#include "ops/conv.h"

#include "autograd/grad_mode.h"
#include "ops/binary.h"
#include "ops/copy.h"
#include "ops/layout.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/unary.h"
#include "autograd/node.h"
#include "ops/register.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember {

int64_t window_count(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode, const char* op) {
  // In 128 bits: a damaged model's padding, dilation or stride may be near INT64_MAX.
  using Wide = __int128;
  const Wide span = Wide{in} + 2 * Wide{p} - Wide{d} * (Wide{k} - 1) - 1;
  EMBER_CHECK(span >= 0, ShapeMismatch, "[", op, "] the window (kernel ", k, ", dilation ", d,
              ") is larger than the padded input (", in, " + 2·", p, ")");
  Wide o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (o - 1) * s >= Wide{in} + p) --o;  // the last window must start inside the input
  EMBER_CHECK(o <= INT64_MAX, InvalidArgument, "[", op, "] the output size overflows int64 (padding ", p, ")");
  return static_cast<int64_t>(o);
}

Tensor sliding_windows(const Tensor& padded, Pair2 k, Pair2 s, Pair2 d, int64_t oh, int64_t ow) {
  Tensor xp = padded.contiguous();
  const Strides& st = xp.strides();
  int64_t steps[4];
  EMBER_CHECK(!__builtin_mul_overflow(st[2], s[0], &steps[0]) && !__builtin_mul_overflow(st[3], s[1], &steps[1]) &&
                  !__builtin_mul_overflow(st[2], d[0], &steps[2]) && !__builtin_mul_overflow(st[3], d[1], &steps[3]),
              InvalidArgument, "[conv2d] stride (", s[0], ", ", s[1], ") or dilation (", d[0], ", ", d[1],
              ") too large for the input");
  return as_strided(xp, {xp.sizes()[0], xp.sizes()[1], oh, ow, k[0], k[1]},
                    {st[0], st[1], steps[0], steps[1], steps[2], steps[3]}, xp.storage_offset());
}

namespace {

Tensor pad_input(const Tensor& x, Pair2 padding) {
  return padding[0] || padding[1] ? pad(x, {padding[1], padding[1], padding[0], padding[0]}) : x;
}

void check_conv(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair2 stride, Pair2 padding, Pair2 dilation,
                int64_t groups) {
  EMBER_CHECK(x.dim() == 4, ShapeMismatch, "[conv2d] expected a 4-d input ([N, C, H, W]), got shape ",
              shape_str(x.sizes()));
  EMBER_CHECK(is_floating(x.dtype()), DTypeMismatch, "[conv2d] expected a floating input, got ", x.dtype());
  EMBER_CHECK(weight.dim() == 4, ShapeMismatch, "[conv2d] expected a weight [O, C/groups, KH, KW], got shape ",
              shape_str(weight.sizes()));
  EMBER_CHECK(weight.dtype() == x.dtype() && (!bias.defined() || bias.dtype() == x.dtype()), DTypeMismatch,
              "[conv2d] input, weight and bias must share a dtype, got ", x.dtype(), ", ", weight.dtype(),
              bias.defined() ? str_cat(", ", bias.dtype()) : std::string());
  for (int i = 0; i < 2; ++i) {
    EMBER_CHECK(stride[i] >= 1 && dilation[i] >= 1 && padding[i] >= 0, InvalidArgument,
                "[conv2d] stride and dilation must be >= 1 and padding >= 0, got stride (", stride[0], ", ", stride[1],
                "), padding (", padding[0], ", ", padding[1], "), dilation (", dilation[0], ", ", dilation[1], ")");
  }
  EMBER_CHECK(groups >= 1, InvalidArgument, "[conv2d] groups must be >= 1, got ", groups);
  const int64_t c = x.sizes()[1], o = weight.sizes()[0], cg = weight.sizes()[1];
  EMBER_CHECK(c % groups == 0 && c / groups == cg && o % groups == 0, ShapeMismatch, "[conv2d] input with ", c, " channels, weight ",
              shape_str(weight.sizes()), " and groups ", groups, " do not fit (expected C = ", cg, "·", groups,
              " and O divisible by groups)");
  EMBER_CHECK(!bias.defined() || (bias.dim() == 1 && bias.sizes()[0] == o), ShapeMismatch,
              "[conv2d] expected a bias of shape [", o, "], got ", shape_str(bias.sizes()));
}

Shape conv_output_shape(const Tensor& x, const Tensor& w, Pair2 stride, Pair2 padding, Pair2 dilation) {
  return {x.sizes()[0], w.sizes()[0],
          window_count(x.sizes()[2], w.sizes()[2], stride[0], padding[0], dilation[0], false, "conv2d"),
          window_count(x.sizes()[3], w.sizes()[3], stride[1], padding[1], dilation[1], false, "conv2d")};
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair2 stride, Pair2 padding, Pair2 dilation,
              int64_t groups) {
  check_conv(x, weight, bias, stride, padding, dilation, groups);
  const Shape out = conv_output_shape(x, weight, stride, padding, dilation);
  return apply1(std::make_shared<Conv2dOp>(ConvParams{stride, padding, dilation, groups}), {x, weight, bias},
                {out, x.dtype()});
}

Tensor conv2d_fused(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& residual,
                    std::optional<double> lo, std::optional<double> hi, Pair2 stride, Pair2 padding, Pair2 dilation,
                    int64_t groups) {
  EMBER_CHECK(!grad_enabled() || !autograd::any_requires_grad({x, weight, bias, residual}), Unsupported,
              "[conv2d_fused] is for inference (a fused convolution has no gradient): run it under NoGradGuard");
  // On CUDA the epilogue adds the bias (one kernel instead of cuDNN's product and an add); on the
  // CPU the product starts from it.
  const bool bias_after = x.is_cuda() && bias.defined();
  Tensor y = conv2d(x, weight, bias_after ? Tensor() : bias, stride, padding, dilation, groups);
  if (residual.defined())
    EMBER_CHECK(residual.sizes() == y.sizes() && residual.dtype() == y.dtype(), ShapeMismatch,
                "[conv2d_fused] the residual is ", shape_str(residual.sizes()), " ", residual.dtype(),
                ", the convolution's output ", shape_str(y.sizes()), " ", y.dtype());
  const Tensor b = bias_after ? bias.contiguous() : Tensor();
  if (!y.is_contiguous()) {  // a channels-last output: the epilogue's public ops
    if (b.defined()) y = add(y, b.reshape({1, b.sizes()[0], 1, 1}));
    if (residual.defined()) y = add(y, residual);
    if (lo || hi) y = clamp(y, lo ? std::optional<Scalar>(*lo) : std::nullopt, hi ? std::optional<Scalar>(*hi) : std::nullopt);
    return y;
  }
  apply_into(std::make_shared<ConvEpilogueOp>(lo, hi), {y, b, residual.defined() ? residual.contiguous() : Tensor()},
             {y});
  return y;
}

Tensor conv2d_reference(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair2 stride, Pair2 padding,
                        Pair2 dilation, int64_t groups) {
  check_conv(x, weight, bias, stride, padding, dilation, groups);
  const Shape shape = conv_output_shape(x, weight, stride, padding, dilation);
  const int64_t n = shape[0], o = shape[1], oh = shape[2], ow = shape[3];
  const int64_t cg = weight.sizes()[1], kh = weight.sizes()[2], kw = weight.sizes()[3];
  const int64_t og = o / groups, k = cg * kh * kw;
  Tensor win = sliding_windows(pad_input(x, padding), {kh, kw}, stride, dilation, oh, ow);
  Tensor out;
  if (groups == 1) {
    // [N·OH·OW, C·KH·KW] @ [C·KH·KW, O]
    Tensor cols = win.permute({0, 2, 3, 1, 4, 5}).reshape({n * oh * ow, k});
    out = mm(cols, weight.reshape({o, k}).transpose(0, 1)).reshape({n, oh, ow, o}).permute({0, 3, 1, 2});
  } else {
    Tensor cols = win.reshape({n, groups, cg, oh, ow, kh, kw}).permute({1, 0, 3, 4, 2, 5, 6}).reshape({groups, n * oh * ow, k});
    out = bmm(cols, weight.reshape({groups, og, k}).transpose(1, 2))
              .reshape({groups, n, oh, ow, og})
              .permute({1, 0, 4, 2, 3})
              .reshape({n, o, oh, ow});
  }
  out = out.contiguous();
  return bias.defined() ? add(out, bias.reshape({1, o, 1, 1})) : out;
}

namespace {

// The transposed convolution as a stride-1 convolution of the zero-spread input with the flipped,
// transposed kernel, through the conv2d op or (reference) the public-op path.
Tensor transposed_conv(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair2 stride, Pair2 padding,
                       Pair2 output_padding, int64_t groups, Pair2 dilation, bool reference) {
  EMBER_CHECK(x.dim() == 4, ShapeMismatch, "[conv_transpose2d] expected a 4-d input ([N, C, H, W]), got shape ",
              shape_str(x.sizes()));
  EMBER_CHECK(groups >= 1 && weight.dim() == 4 && weight.sizes()[0] == x.sizes()[1] && x.sizes()[1] % groups == 0,
              ShapeMismatch, "[conv_transpose2d] expected a weight [", x.sizes()[1], ", C_out/groups, KH, KW], got ",
              shape_str(weight.sizes()));
  for (int i = 0; i < 2; ++i) {
    EMBER_CHECK(stride[i] >= 1 && dilation[i] >= 1, InvalidArgument,
                "[conv_transpose2d] stride and dilation must be >= 1");
    EMBER_CHECK(output_padding[i] >= 0 && output_padding[i] < std::max(stride[i], dilation[i]), InvalidArgument,
                "[conv_transpose2d] output_padding must be smaller than stride or dilation, got ", output_padding[i]);
  }
  const int64_t n = x.sizes()[0], cin = x.sizes()[1], h = x.sizes()[2], w = x.sizes()[3];
  const int64_t cog = weight.sizes()[1], kh = weight.sizes()[2], kw = weight.sizes()[3];
  // Spread the input by the stride (zeros between pixels) ...
  Tensor up = x;
  if (stride[0] > 1)
    up = pad(unsqueeze(up, 3), {0, 0, 0, stride[0] - 1}).reshape({n, cin, h * stride[0], w}).slice(2, 0, (h - 1) * stride[0] + 1);
  const int64_t hu = up.sizes()[2];
  if (stride[1] > 1)
    up = pad(unsqueeze(up, 4), {0, stride[1] - 1}).reshape({n, cin, hu, w * stride[1]}).slice(3, 0, (w - 1) * stride[1] + 1);
  // ... then a stride-1 convolution with the flipped, transposed kernel; negative pads crop.
  const int64_t ph = dilation[0] * (kh - 1) - padding[0], pw = dilation[1] * (kw - 1) - padding[1];
  up = pad(up, {pw, pw + output_padding[1], ph, ph + output_padding[0]});
  Tensor wt = weight.reshape({groups, cin / groups, cog, kh, kw}).transpose(1, 2).reshape({groups * cog, cin / groups, kh, kw});
  return reference ? conv2d_reference(up, flip(wt, {2, 3}), bias, {1, 1}, {0, 0}, dilation, groups)
                   : conv2d(up, flip(wt, {2, 3}), bias, {1, 1}, {0, 0}, dilation, groups);
}

}  // namespace

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair2 stride, Pair2 padding,
                        Pair2 output_padding, int64_t groups, Pair2 dilation) {
  return transposed_conv(x, weight, bias, stride, padding, output_padding, groups, dilation, false);
}

Tensor conv2d_input_grad_reference(const Tensor& g, const Tensor& w, const Shape& x_shape, const ConvParams& p) {
  // The transposed convolution; the output padding (the rows and columns past the last window,
  // always fewer than the stride) restores x's size.
  Pair2 extra{};
  for (int i = 0; i < 2; ++i)
    extra[i] = x_shape[2 + i] -
               ((g.sizes()[2 + i] - 1) * p.stride[i] - 2 * p.padding[i] + p.dilation[i] * (w.sizes()[2 + i] - 1) + 1);
  return transposed_conv(g, w, Tensor(), p.stride, p.padding, extra, p.groups, p.dilation, /*reference=*/true);
}

Tensor conv2d_weight_grad_reference(const Tensor& x, const Tensor& g, const Shape& w_shape, const ConvParams& p) {
  // dW[g] = G[g]ᵀ · windows[g], summed over the batch and the output positions.
  const int64_t n = g.sizes()[0], o = g.sizes()[1], oh = g.sizes()[2], ow = g.sizes()[3];
  const int64_t cg = w_shape[1], kh = w_shape[2], kw = w_shape[3], groups = p.groups;
  Tensor win = sliding_windows(pad_input(x, p.padding), {kh, kw}, p.stride, p.dilation, oh, ow);
  Tensor cols = win.reshape({n, groups, cg, oh, ow, kh, kw}).permute({1, 0, 3, 4, 2, 5, 6}).reshape({groups, n * oh * ow, cg * kh * kw});
  Tensor gr = g.reshape({n, groups, o / groups, oh, ow}).permute({1, 2, 0, 3, 4}).reshape({groups, o / groups, n * oh * ow});
  return bmm(gr, cols).reshape(w_shape);
}

void Conv2dBackwardDataOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  copy_(outputs[0], conv2d_input_grad_reference(inputs[0], inputs[1], outputs[0].sizes(), params));
}

void Conv2dBackwardFilterOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  copy_(outputs[0], conv2d_weight_grad_reference(inputs[0], inputs[1], outputs[0].sizes(), params));
}

bool Conv2dOp::differentiable() const { return true; }

TensorList Conv2dOp::backward(const BackwardContext& ctx) const {
  const Tensor& x = ctx.inputs[0];
  const Tensor& w = ctx.inputs[1];
  const Tensor& g = ctx.grads[0];
  TensorList grads(3);
  // Under create_graph the public-op forms, which are differentiable; otherwise one kernel
  // (cuDNN's backward-data and backward-filter on CUDA) for each gradient.
  const bool differentiable_grads = grad_enabled();
  if (ctx.needs_input_grad(0))
    grads[0] = differentiable_grads ? conv2d_input_grad_reference(g, w, x.sizes(), params)
                                    : apply1(std::make_shared<Conv2dBackwardDataOp>(params), {g, w}, {x.sizes(), x.dtype()});
  if (ctx.needs_input_grad(1))
    grads[1] = differentiable_grads ? conv2d_weight_grad_reference(x, g, w.sizes(), params)
                                    : apply1(std::make_shared<Conv2dBackwardFilterOp>(params), {x, g}, {w.sizes(), w.dtype()});
  if (ctx.needs_input_grad(2)) grads[2] = sum(g, {0, 2, 3});
  return grads;
}

void register_conv_ops(OpRegistry& r) {
  r.add("conv", "conv2d", kFloatingSet, {.cuda_kernel = true, .backward = true});
  r.add("conv", "conv_epilogue", kFloatingSet, {.cuda_kernel = true, .backward = false});
}

}  // namespace ember
