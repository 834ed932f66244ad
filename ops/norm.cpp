#include "ops/norm.h"

#include "autograd/grad_mode.h"
#include "ops/binary.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/reduce.h"
#include "ops/register.h"
#include "ops/unary.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember {

namespace {

DType accumulation_type(DType t) { return t == kFloat64 ? kFloat64 : kFloat32; }

// [1, C, 1, ...]: a per-channel tensor broadcast against x.
Shape channel_shape(const Tensor& x) {
  Shape s(x.dim(), 1);
  s[1] = x.sizes()[1];
  return s;
}

// Every dim but the channels.
DimList reduced_dims(const Tensor& x) {
  DimList dims;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != 1) dims.push_back(d);
  return dims;
}

// (x − mean)·invstd·weight + bias in the accumulation dtype, cast back to x's.
Tensor normalise(const Tensor& xa, const Tensor& mean, const Tensor& invstd, const Tensor& weight, const Tensor& bias,
                 DType out_type) {
  const Shape cs = channel_shape(xa);
  Tensor y = mul(sub(xa, mean.reshape(cs)), invstd.reshape(cs));
  if (weight.defined()) y = mul(y, weight.reshape(cs));
  if (bias.defined()) y = add(y, bias.reshape(cs));
  return y.to(out_type);
}

// The training-mode gradients from public ops; `mean` and `invstd` as saved, or recomputed
// from x when the result must be differentiable.
TensorList training_grads(const Tensor& x, const Tensor& g, const Tensor& weight, const Tensor& mean,
                          const Tensor& invstd) {
  const DType acc = accumulation_type(x.dtype());
  const Shape cs = channel_shape(x);
  const DimList dims = reduced_dims(x);
  const double count = static_cast<double>(x.numel() / x.sizes()[1]);
  Tensor xhat = mul(sub(x.to(acc), mean.reshape(cs)), invstd.reshape(cs));
  Tensor ga = g.to(acc);
  Tensor dbias = sum(ga, dims);
  Tensor dweight = sum(mul(ga, xhat), dims);
  // dx = w·invstd·(g − Σg/M − x̂·Σ(g·x̂)/M)
  Tensor scale = weight.defined() ? mul(weight.to(acc), invstd) : invstd;
  Tensor centred = sub(sub(ga, div(dbias, count).reshape(cs)), mul(xhat, div(dweight, count).reshape(cs)));
  Tensor dx = mul(centred, scale.reshape(cs)).to(x.dtype());
  return {dx, dweight, dbias};
}

}  // namespace

TensorList batch_norm_forward_reference(const Tensor& x, const Tensor& weight, const Tensor& bias, bool training,
                                        double momentum, double eps, const Tensor& running_mean,
                                        const Tensor& running_var) {
  const DType acc = accumulation_type(x.dtype());
  Tensor xa = x.to(acc);
  if (!training) {
    Tensor invstd = rsqrt(add(running_var.to(acc), eps));
    return {normalise(xa, running_mean.to(acc), invstd, weight, bias, x.dtype())};
  }
  const DimList dims = reduced_dims(x);
  Tensor mean_ = mean(xa, dims);
  Tensor var_ = var(xa, dims, 0);
  Tensor invstd = rsqrt(add(var_, eps));
  if (running_mean.defined() && running_var.defined()) {
    const double count = static_cast<double>(x.numel() / x.sizes()[1]);
    const Tensor unbiased = mul(var_, count / (count - 1));
    copy_(running_mean, add(mul(running_mean.to(acc), 1 - momentum), mul(mean_, momentum)));
    copy_(running_var, add(mul(running_var.to(acc), 1 - momentum), mul(unbiased, momentum)));
  }
  return {normalise(xa, mean_, invstd, weight, bias, x.dtype()), mean_, invstd};
}

TensorList batch_norm_backward_reference(const Tensor& x, const Tensor& g, const Tensor& weight, const Tensor& mean,
                                         const Tensor& invstd) {
  return training_grads(x, g, weight, mean, invstd);
}

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  EMBER_CHECK(x.dim() >= 2, ShapeMismatch, "[batch_norm] expected an input [N, C, ...], got shape ",
              shape_str(x.sizes()));
  EMBER_CHECK(is_floating(x.dtype()), DTypeMismatch, "[batch_norm] expected a floating input, got ", x.dtype());
  const int64_t c = x.sizes()[1];
  for (const Tensor* t : {&running_mean, &running_var, &weight, &bias}) {
    if (!t->defined()) continue;
    EMBER_CHECK(t->dim() == 1 && t->sizes()[0] == c, ShapeMismatch,
                "[batch_norm] expected per-channel tensors of shape [", c, "], got ", shape_str(t->sizes()));
    EMBER_CHECK(is_floating(t->dtype()), DTypeMismatch, "[batch_norm] expected floating per-channel tensors, got ",
                t->dtype());
  }
  EMBER_CHECK(running_mean.defined() == running_var.defined(), InvalidArgument,
              "[batch_norm] running_mean and running_var must both be given or both be absent");
  EMBER_CHECK(eps > 0, InvalidArgument, "[batch_norm] eps must be positive, got ", eps);
  if (training) {
    const int64_t count = c > 0 ? x.numel() / c : 0;
    EMBER_CHECK(count > 1, InvalidArgument, "[batch_norm] training needs more than one value per channel, got input ",
                shape_str(x.sizes()));
  } else {
    EMBER_CHECK(running_mean.defined(), InvalidArgument,
                "[batch_norm] evaluation mode needs running_mean and running_var");
  }
  auto op = std::make_shared<BatchNormOp>(training, momentum, eps, running_mean, running_var);
  const DType acc = accumulation_type(x.dtype());
  if (!training) return apply1(op, {x, weight, bias}, {x.sizes(), x.dtype()});
  TensorList out = apply(op, {x, weight, bias}, {{x.sizes(), x.dtype()}, {{c}, acc}, {{c}, acc}});
  op->saved_mean = out[1].detach();  // detached: a tensor holding the node would be a cycle
  op->saved_invstd = out[2].detach();
  return out[0];
}

void BatchNormOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  TensorList r =
      batch_norm_forward_reference(inputs[0], inputs[1], inputs[2], training, momentum, eps, running_mean, running_var);
  for (size_t i = 0; i < outputs.size(); ++i) copy_(outputs[i], r[i]);
}

void BatchNormBackwardOp::forward_cpu(const TensorList& inputs, const TensorList& outputs) {
  TensorList r = batch_norm_backward_reference(inputs[0], inputs[1], inputs[2], inputs[3], inputs[4]);
  for (size_t i = 0; i < outputs.size(); ++i) copy_(outputs[i], r[i]);
}

bool BatchNormOp::differentiable() const { return true; }

TensorList BatchNormOp::backward(const BackwardContext& ctx) const {
  const Tensor& x = ctx.inputs[0];
  const Tensor& weight = ctx.inputs[1];
  const Tensor& g = ctx.grads[0];
  TensorList grads(3);
  if (!g.defined()) return grads;
  const int64_t c = x.sizes()[1];
  const DType acc = accumulation_type(x.dtype());
  TensorList r;
  if (!training) {
    // y = (x − r_mean)·invstd·w + b: every gradient is element-wise.
    const Shape cs = channel_shape(x);
    const DimList dims = reduced_dims(x);
    Tensor invstd = rsqrt(add(running_var.to(acc), eps));
    Tensor scale = weight.defined() ? mul(weight.to(acc), invstd) : invstd;
    Tensor ga = g.to(acc);
    if (ctx.needs_input_grad(0)) grads[0] = mul(ga, scale.reshape(cs)).to(x.dtype());
    if (ctx.needs_input_grad(1))
      grads[1] = sum(mul(ga, mul(sub(x.to(acc), running_mean.to(acc).reshape(cs)), invstd.reshape(cs))), dims)
                     .to(weight.dtype());
    if (ctx.needs_input_grad(2)) grads[2] = sum(ga, dims).to(ctx.inputs[2].dtype());
    return grads;
  }
  if (grad_enabled()) {
    // Under create_graph: the statistics recomputed from x so that the gradients are
    // differentiable with respect to x as well.
    const DimList dims = reduced_dims(x);
    Tensor xa = x.to(acc);
    r = training_grads(x, g, weight, mean(xa, dims), rsqrt(add(var(xa, dims, 0), eps)));
  } else {
    r = apply(std::make_shared<BatchNormBackwardOp>(eps), {x, g, weight, saved_mean, saved_invstd},
              {{x.sizes(), x.dtype()}, {{c}, acc}, {{c}, acc}});
  }
  if (ctx.needs_input_grad(0)) grads[0] = r[0];
  if (ctx.needs_input_grad(1)) grads[1] = r[1].to(weight.dtype());
  if (ctx.needs_input_grad(2)) grads[2] = r[2].to(ctx.inputs[2].dtype());
  return grads;
}

void register_norm_ops(OpRegistry& r) {
  r.add("norm", "batch_norm", kFloatingSet, {.cuda_kernel = true, .backward = true});
}

}  // namespace ember
