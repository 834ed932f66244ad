#include "ops/pool.h"

#include <limits>

#include "autograd/grad_mode.h"
#include "ops/binary.h"
#include "ops/conv.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/index.h"
#include "ops/layout.h"
#include "ops/reduce.h"
#include "ops/register.h"
#include "ops/unary.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember {

namespace {

Shape output_shape(const Shape& x, const PoolParams& p) {
  return {x[0], x[1],
          window_count(x[2], p.kernel[0], p.stride[0], p.padding[0], p.dilation[0], p.ceil_mode, "max_pool2d"),
          window_count(x[3], p.kernel[1], p.stride[1], p.padding[1], p.dilation[1], p.ceil_mode, "max_pool2d")};
}

}  // namespace

// The public-op form: the maximum of each strided window of the (-inf padded) input.
std::pair<Tensor, Tensor> max_pool2d_reference(const Tensor& x, const PoolParams& p) {
  const Shape out = output_shape(x.sizes(), p);
  const int64_t n = x.sizes()[0], c = x.sizes()[1], w = x.sizes()[3], oh = out[2], ow = out[3];
  // ceil_mode's last windows may reach past the padding: pad those cells with -inf too.
  int64_t extra[2];
  for (int i = 0; i < 2; ++i)
    extra[i] = std::max<int64_t>(0, (out[2 + i] - 1) * p.stride[i] + p.dilation[i] * (p.kernel[i] - 1) + 1 -
                                        (x.sizes()[2 + i] + 2 * p.padding[i]));
  Tensor xp = pad(x, {p.padding[1], p.padding[1] + extra[1], p.padding[0], p.padding[0] + extra[0]},
                  -std::numeric_limits<double>::infinity());
  Tensor win =
      sliding_windows(xp, p.kernel, p.stride, p.dilation, oh, ow).reshape({n, c, oh, ow, p.kernel[0] * p.kernel[1]});
  auto [values, arg] = max(win, -1);  // the first maximum of each window, as PyTorch
  // The flat index into the (unpadded) input plane of each window's maximum.
  const TensorOptions i64{kInt64, x.device()};
  Tensor row = add(mul(arange(oh, i64).reshape({oh, 1}), p.stride[0]), -p.padding[0]);
  Tensor col = add(mul(arange(ow, i64).reshape({1, ow}), p.stride[1]), -p.padding[1]);
  // A window whose maximum is -inf may have picked a padding cell (they tie): PyTorch reports
  // the window's first cell inside the input instead.
  auto first_inside = [](const Tensor& start, int64_t d) {
    return add(start, mul(floor_divide(add(clamp(neg(start), Scalar(0)), d - 1), d), d));
  };
  Tensor first = add(mul(first_inside(row, p.dilation[0]), w), first_inside(col, p.dilation[1]));
  row = add(row, mul(floor_divide(arg, p.kernel[1]), p.dilation[0]));
  col = add(col, mul(remainder(arg, p.kernel[1]), p.dilation[1]));
  Tensor index = add(mul(row, w), col);
  return {values, where(eq(values, -std::numeric_limits<double>::infinity()), first.expand(index.sizes()), index)};
}

namespace {

// The public-op input gradient: each window's gradient added at its maximum's index.
Tensor max_pool_grad_reference(const Tensor& g, const Tensor& indices, const Shape& x_shape) {
  const int64_t n = x_shape[0], c = x_shape[1];
  return scatter_add(zeros({n, c, x_shape[2] * x_shape[3]}, {g.dtype(), g.device()}), 2, indices.reshape({n, c, -1}),
                     g.reshape({n, c, -1}))
      .reshape(x_shape);
}

}  // namespace

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const PoolParams& p) {
  EMBER_CHECK(x.dim() == 4, ShapeMismatch, "[max_pool2d] expected a 4-d input ([N, C, H, W]), got shape ",
              shape_str(x.sizes()));
  EMBER_CHECK(is_floating(x.dtype()), DTypeMismatch, "[max_pool2d] expected a floating input, got ", x.dtype());
  for (int i = 0; i < 2; ++i) {
    EMBER_CHECK(p.kernel[i] >= 1 && p.stride[i] >= 1 && p.dilation[i] >= 1, InvalidArgument,
                "[max_pool2d] kernel_size, stride and dilation must be positive, got kernel (", p.kernel[0], ", ",
                p.kernel[1], "), stride (", p.stride[0], ", ", p.stride[1], "), dilation (", p.dilation[0], ", ",
                p.dilation[1], ")");
    EMBER_CHECK(p.padding[i] >= 0 && p.padding[i] <= p.kernel[i] / 2, InvalidArgument,
                "[max_pool2d] padding must be at most half the kernel size, got ", p.padding[i]);
  }
  const Shape out = output_shape(x.sizes(), p);
  auto op = std::make_shared<MaxPool2dOp>(p, x.sizes());
  TensorList r = apply(op, {x}, {{out, x.dtype()}, {out, kInt64}});
  op->saved_indices = r[1].detach();  // detached: a tensor holding the node would be a cycle
  return {r[0], r[1]};
}

void MaxPool2dBackwardOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  copy_(outputs[0], max_pool_grad_reference(inputs[0], inputs[1], outputs[0].sizes()));
}

bool MaxPool2dOp::differentiable() const { return true; }

TensorList MaxPool2dOp::backward(const BackwardContext& ctx) const {
  const Tensor& g = ctx.grads[0];
  const Tensor& indices = saved_indices;
  if (!ctx.needs_input_grad(0) || !g.defined()) return {Tensor()};
  if (grad_enabled()) return {max_pool_grad_reference(g, indices, input_shape)};  // differentiable in g
  return {apply1(std::make_shared<MaxPool2dBackwardOp>(params), {g, indices}, {input_shape, g.dtype()})};
}

void register_pool_ops(OpRegistry& r) {
  r.add("pool", "max_pool2d", kFloatingSet, {.cuda_kernel = true, .backward = true});
}

}  // namespace ember
