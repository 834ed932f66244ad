#include "ops/scan.h"

#include "ops/layout.h"
#include "ops/register.h"
#include "runtime/error.h"

namespace ember {

Tensor cumsum(const Tensor& x, int64_t dim, std::optional<DType> dtype) {
  const int64_t d = wrap_dim(dim, std::max<int64_t>(x.dim(), 1), "cumsum");
  const DType out = dtype ? *dtype : is_floating(x.dtype()) ? x.dtype() : kInt64;
  EMBER_CHECK(out != kBool, InvalidArgument, "[cumsum] cannot sum into bool");
  return apply1(std::make_shared<CumsumOp>(d), {x.to(out).contiguous()}, {x.sizes(), out});
}

bool CumsumOp::differentiable() const { return true; }

TensorList CumsumOp::backward(const BackwardContext& ctx) const {
  // Each x_j reaches every y_i with i >= j: the gradient is the reversed running sum of g.
  const Tensor& g = ctx.grads[0];
  if (g.dim() == 0) return {g};
  return {flip(cumsum(flip(g, {dim}), dim), {dim})};
}

void register_scan_ops(OpRegistry& r) {
  r.add("scan", "cumsum", kNumericSet, {.cuda_kernel = true, .backward = true});
}

}  // namespace ember
