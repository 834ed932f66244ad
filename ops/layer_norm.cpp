#include "ops/layer_norm.h"

#include "autograd/grad_mode.h"
#include "ops/binary.h"
#include "ops/reduce.h"
#include "ops/register.h"
#include "ops/unary.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember {

namespace {

DType stats_dtype(DType x) { return x == kFloat64 ? kFloat64 : kFloat32; }

// A weight or bias as the kernels read it: [normalized], contiguous, in x's dtype.
Tensor as_row(const Tensor& t, const Tensor& x, int64_t normalized) {
  return t.defined() ? reshape(t.to(x.dtype()), {normalized}).contiguous() : t;
}

}  // namespace

Tensor layer_norm_rows(const Tensor& x, int64_t normalized, const Tensor& weight, const Tensor& bias, double eps,
                       bool rms) {
  const int64_t rows = normalized == 0 ? 0 : x.numel() / normalized;
  const DType acc = stats_dtype(x.dtype());
  auto op = std::make_shared<LayerNormOp>(rms, eps);
  TensorList out = apply(op, {reshape(x.contiguous(), {rows, normalized}), as_row(weight, x, normalized),
                              as_row(bias, x, normalized)},
                         {{{rows, normalized}, x.dtype()}, {{rows}, acc}, {{rows}, acc}});
  return reshape(out[0], x.sizes());
}

std::pair<Tensor, Tensor> add_layer_norm_rows(const Tensor& x, const Tensor& residual, int64_t normalized,
                                              const Tensor& weight, const Tensor& bias, double eps) {
  const int64_t rows = normalized == 0 ? 0 : x.numel() / normalized;
  const Shape shape{rows, normalized};
  TensorList out = apply(std::make_shared<AddLayerNormOp>(eps),
                         {reshape(x.contiguous(), shape), reshape(residual.contiguous(), shape),
                          as_row(weight, x, normalized), as_row(bias, x, normalized)},
                         {{shape, x.dtype()}, {shape, x.dtype()}});
  return {reshape(out[0], x.sizes()), reshape(out[1], x.sizes())};
}

bool LayerNormOp::differentiable() const { return true; }

TensorList LayerNormOp::backward(const BackwardContext& ctx) const {
  const Tensor& x = ctx.inputs[0];
  const Tensor& w = ctx.inputs[1];
  const Tensor& g = ctx.grads[0];
  const DType acc = stats_dtype(x.dtype());
  TensorList grads(3);
  if (!grad_enabled()) {
    const Tensor& mean = ctx.outputs[1];
    const Tensor& rstd = ctx.outputs[2];
    if (ctx.needs_input_grad(0))
      grads[0] = apply1(std::make_shared<LayerNormBackwardOp>(rms), {x, g.contiguous(), w, mean, rstd},
                        {x.sizes(), x.dtype()});
    if (ctx.needs_input_grad(1) || ctx.needs_input_grad(2)) {
      const Tensor gf = g.to(acc);
      if (ctx.needs_input_grad(1)) {
        const Tensor xhat = mul(sub(x.to(acc), unsqueeze(mean, 1)), unsqueeze(rstd, 1));
        grads[1] = sum(mul(gf, xhat), {0}).to(x.dtype());
      }
      if (ctx.needs_input_grad(2)) grads[2] = sum(gf, {0}).to(x.dtype());
    }
    return grads;
  }
  // Under create_graph: the statistics recomputed from x with public ops, so every gradient is
  // differentiable again.
  const Tensor xf = x.to(acc), gf = g.to(acc);
  const Tensor centred = rms ? xf : sub(xf, mean(xf, {1}, true));
  const Tensor rstd = rsqrt(add(mean(mul(centred, centred), {1}, true), eps));
  const Tensor xhat = mul(centred, rstd);
  const Tensor gw = w.defined() ? mul(gf, w.to(acc)) : gf;
  Tensor inner = sub(gw, mul(xhat, mean(mul(gw, xhat), {1}, true)));
  if (!rms) inner = sub(inner, mean(gw, {1}, true));
  grads[0] = mul(rstd, inner).to(x.dtype());
  if (w.defined()) grads[1] = sum(mul(gf, xhat), {0}).to(x.dtype());
  if (ctx.inputs[2].defined()) grads[2] = sum(gf, {0}).to(x.dtype());
  return grads;
}

void register_layer_norm_ops(OpRegistry& r) {
  r.add("norm", "layer_norm", kFloatingSet, {.cuda_kernel = true, .backward = true});
  r.add("norm", "rms_norm", kFloatingSet, {.cuda_kernel = true, .backward = true});
  r.add("norm", "add_layer_norm", kFloatingSet, {.cuda_kernel = true, .backward = false});
}

}  // namespace ember
