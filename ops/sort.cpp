#include "ops/sort.h"

#include "ops/creation.h"
#include "ops/index.h"
#include "ops/register.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember {

ValuesIndices sort(const Tensor& x, int64_t dim, bool descending) {
  EMBER_CHECK(x.dtype() != kBool, Unsupported, "[sort] bool tensors are not sorted; convert to uint8 first");
  if (x.dim() == 0) return {x, zeros({}, {kInt64, x.device()})};
  const int64_t d = wrap_dim(dim, x.dim(), "sort");
  // Rows along the last dim, sorted, then moved back.
  const Tensor rows = transpose(x, d, -1).contiguous();
  TensorList out = apply(std::make_shared<SortOp>(descending), {rows}, {{rows.sizes(), x.dtype()}, {rows.sizes(), kInt64}});
  return {transpose(out[0], d, -1), transpose(out[1], d, -1)};
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) { return sort(x, dim, descending).indices; }

ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  const int64_t d = wrap_dim(dim, std::max<int64_t>(x.dim(), 1), "topk");
  const int64_t n = x.dim() == 0 ? 1 : x.size(d);
  EMBER_CHECK(k >= 0 && k <= n, InvalidArgument, "[topk] k must be in [0, ", n, "] (the size of dim ", d, "), got ", k);
  ValuesIndices s = sort(x, d, largest);
  if (x.dim() == 0) return s;
  return {s.values.slice(d, 0, k), s.indices.slice(d, 0, k)};
}

bool SortOp::differentiable() const { return true; }

TensorList SortOp::backward(const BackwardContext& ctx) const {
  // Each sorted value came from one input element: its gradient goes back there.
  const Tensor& g = ctx.grads[0];
  return {scatter(zeros(g.sizes(), {g.dtype(), g.device()}), -1, ctx.outputs[1], g)};
}

void register_sort_ops(OpRegistry& r) {
  r.add("sort", "sort", kNumericSet, {.cuda_kernel = true, .backward = true});
  r.add("sort", "argsort", kNumericSet, {.cuda_kernel = true});
  r.add("sort", "topk", kNumericSet, {.cuda_kernel = true, .backward = true});
}

}  // namespace ember
