#include "ops/softmax.h"

#include "autograd/grad_mode.h"
#include "ops/binary.h"
#include "ops/reduce.h"
#include "ops/register.h"
#include "ops/unary.h"
#include "runtime/error.h"

namespace ember {

namespace {

Tensor run(const Tensor& x, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  EMBER_CHECK(is_floating(x.dtype()), InvalidArgument, "[", op, "] expected a floating tensor, got ", x.dtype());
  const int64_t d = wrap_dim(dim, std::max<int64_t>(x.dim(), 1), op);
  return apply1(std::make_shared<SoftmaxOp>(d, log), {x.contiguous()}, {x.sizes(), x.dtype()});
}

}  // namespace

RowGeometry row_geometry(const Shape& shape, int64_t dim) {
  RowGeometry g;
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
    if (i < dim) g.outer *= shape[i];
    else if (i == dim) g.size = shape[i];
    else g.inner *= shape[i];
  }
  return g;
}

Tensor softmax(const Tensor& x, int64_t dim) { return run(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return run(x, dim, true); }

Tensor attention_softmax(const Tensor& scores, double scale, bool causal) {
  EMBER_CHECK(is_floating(scores.dtype()), InvalidArgument, "[attention_softmax] expected floating scores, got ",
              scores.dtype());
  EMBER_CHECK(!causal || scores.dim() >= 2, InvalidArgument, "[attention_softmax] a causal mask needs scores of shape "
              "[..., L, S], got ", shape_str(scores.sizes()));
  const int64_t last = std::max<int64_t>(scores.dim(), 1) - 1;
  return apply1(std::make_shared<SoftmaxOp>(last, false, scale, causal ? scores.size(-2) : 0), {scores.contiguous()},
                {scores.sizes(), scores.dtype()});
}

bool SoftmaxOp::differentiable() const { return true; }

TensorList SoftmaxOp::backward(const BackwardContext& ctx) const {
  const Tensor& y = ctx.outputs[0];
  const Tensor& g = ctx.grads[0];
  if (!grad_enabled())
    return {apply1(std::make_shared<SoftmaxBackwardOp>(dim, log, scale), {y, g.contiguous()}, {y.sizes(), y.dtype()})};
  // Under create_graph: public ops, differentiable again (y depends on x through this node).
  const int64_t d = y.dim() == 0 ? 0 : dim;
  if (log) return {sub(g, mul(exp(y), sum(g, {d}, true)))};
  const Tensor dx = mul(y, sub(g, sum(mul(g, y), {d}, true)));
  return {scale == 1 ? dx : mul(dx, scale)};
}

void register_softmax_ops(OpRegistry& r) {
  r.add("softmax", "softmax", kFloatingSet, {.cuda_kernel = true, .backward = true});
  r.add("softmax", "log_softmax", kFloatingSet, {.cuda_kernel = true, .backward = true});
}

}  // namespace ember
