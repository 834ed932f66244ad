#include "ops/loss.h"

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

// The float type lse is kept in: float for the half types, whose precision would spoil the
// backward's exp(x − lse), else the logits' own.
DType lse_dtype(DType logits) { return logits == kFloat16 || logits == kBFloat16 ? kFloat32 : logits; }

}  // namespace

std::pair<Tensor, Tensor> cross_entropy_rows(const Tensor& logits, const Tensor& target, const Tensor& weight,
                                            int64_t ignore_index, double label_smoothing) {
  EMBER_CHECK(logits.dim() == 2 && is_floating(logits.dtype()), InvalidArgument,
              "[cross_entropy] expected floating logits [N, C], got ", logits.dtype(), " of shape ",
              shape_str(logits.sizes()));
  const int64_t n = logits.sizes()[0], classes = logits.sizes()[1];
  EMBER_CHECK(target.dtype() == kInt64 && target.dim() == 1 && target.sizes()[0] == n, InvalidArgument,
              "[cross_entropy] expected int64 class indices of shape [", n, "] (or class probabilities of shape ",
              shape_str(logits.sizes()), "), got ", target.dtype(), " of shape ", shape_str(target.sizes()));
  EMBER_CHECK(label_smoothing >= 0 && label_smoothing <= 1, InvalidArgument,
              "[cross_entropy] label_smoothing must be in [0, 1], got ", label_smoothing);
  Tensor w;
  if (weight.defined()) {
    EMBER_CHECK(weight.dim() == 1 && weight.sizes()[0] == classes, InvalidArgument,
                "[cross_entropy] expected a class weight of shape [", classes, "], got ", shape_str(weight.sizes()));
    w = weight.to(logits.dtype()).contiguous();
  }
  EMBER_CHECK(classes > 0 || n == 0, InvalidArgument, "[cross_entropy] logits have no classes");
  auto op = std::make_shared<CrossEntropyOp>(ignore_index, label_smoothing);
  TensorList out = apply(op, {logits.contiguous(), target.contiguous(), w},
                         {{{n}, logits.dtype()}, {{n}, logits.dtype()}, {{n}, lse_dtype(logits.dtype())}});
  // The row weights depend on target and weight only: nothing flows back through them.
  return {out[0], out[1].detach()};
}

bool CrossEntropyOp::differentiable() const { return true; }

TensorList CrossEntropyOp::backward(const BackwardContext& ctx) const {
  const Tensor& x = ctx.inputs[0];
  const Tensor& target = ctx.inputs[1];
  const Tensor& weight = ctx.inputs[2];
  const Tensor& lse = ctx.outputs[2];
  const Tensor& g = ctx.grads[0];
  const Tensor& g_lse = ctx.grads[2];  // non-zero only in higher-order gradients (d lse/dx = p)
  TensorList grads(3);
  if (!ctx.needs_input_grad(0)) return grads;  // weight takes no gradient, as in PyTorch
  if (!grad_enabled()) {
    // The usual case: one fused pass. g may be expanded from a scalar (a mean's gradient):
    // the kernels read it through its stride, so it is not copied.
    grads[0] = apply1(std::make_shared<CrossEntropyBackwardOp>(ignore_index, label_smoothing),
                      {x, target, weight, lse.detach(), g, g_lse.contiguous()}, {x.sizes(), x.dtype()});
    return grads;
  }
  // Under create_graph: the same formula with public ops, so it is differentiable again.
  // dx = g·[(1−ε)·w_y·(p − onehot) + ε/C·(W·p − w)] (zero on ignored rows) + g_lse·p.
  const int64_t classes = x.sizes()[1];
  const double eps = label_smoothing;
  Tensor p = exp(sub(x, unsqueeze(lse.to(x.dtype()), 1)));
  Tensor one_hot = eq(unsqueeze(target, 1), arange(classes, {kInt64, x.device()})).to(x.dtype());
  Tensor row_scale = mul(g, ne(target, ignore_index).to(x.dtype()));
  Tensor w_y = weight.defined() ? sum(mul(one_hot, unsqueeze(weight, 0)), {1}) : ones_like(row_scale);
  Tensor d = mul(sub(p, one_hot), unsqueeze(mul(w_y, 1 - eps), 1));
  if (eps > 0) {
    Tensor smooth = weight.defined() ? sub(mul(p, sum(weight)), unsqueeze(weight, 0)) : sub(mul(p, classes), 1.0);
    d = add(d, mul(smooth, eps / classes));
  }
  grads[0] = add(mul(d, unsqueeze(row_scale, 1)), mul(p, unsqueeze(g_lse.to(x.dtype()), 1)));
  return grads;
}

void register_loss_ops(OpRegistry& r) {
  r.add("loss", "cross_entropy", kFloatingSet, {.cuda_kernel = true, .backward = true});
}

}  // namespace ember
