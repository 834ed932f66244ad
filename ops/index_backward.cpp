// Backward of the indexing ops and of max/min with indices: gradients scatter-add back to the
// positions that were read (scatter_add is itself recorded, so these are differentiable too).
#include "ops/creation.h"
#include "ops/index.h"
#include "ops/reduce.h"
#include "ops/view.h"

namespace ember {

bool IndexSelectOp::differentiable() const { return true; }
TensorList IndexSelectOp::backward(const BackwardContext& ctx) const {
  const Tensor& t = ctx.inputs[0];
  const Tensor& g = ctx.grads[0];
  if (dim == 0 && t.dim() >= 1 && is_floating(g.dtype())) {
    // An embedding's backward: whole rows added by a deterministic segmented sum (the index
    // was range-checked by the forward).
    const int64_t n = g.sizes()[0], rows = t.sizes()[0], width = rows == 0 ? 0 : t.numel() / rows;
    const Tensor sum = apply1(std::make_shared<IndexAddRowsOp>(), {g.reshape({n, width}).contiguous(), ctx.inputs[1].contiguous()},
                              {{rows, width}, g.dtype()});
    return {sum.reshape(t.sizes()), Tensor()};
  }
  // index_add: the 1-D index broadcast over g's other dims.
  Shape view_shape(static_cast<size_t>(g.dim()), 1);
  view_shape[dim] = g.sizes()[dim];
  Tensor idx = expand(reshape(ctx.inputs[1], view_shape), g.sizes());
  return {scatter_add(zeros_like(t), dim, idx, g), Tensor()};
}

bool IndexAddRowsOp::differentiable() const { return true; }
TensorList IndexAddRowsOp::backward(const BackwardContext& ctx) const {
  return {index_select(ctx.grads[0], 0, ctx.inputs[1]), Tensor()};
}

bool GatherOp::differentiable() const { return true; }
TensorList GatherOp::backward(const BackwardContext& ctx) const {
  return {scatter_add(zeros_like(ctx.inputs[0]), dim, ctx.inputs[1], ctx.grads[0]), Tensor()};
}

bool ArgReduceOp::differentiable() const { return with_values; }
TensorList ArgReduceOp::backward(const BackwardContext& ctx) const {
  // max/min(dim): the gradient goes to the element each index names.
  const Tensor& x = ctx.inputs[0];
  Tensor g = ctx.grads[0], idx = ctx.outputs[1];
  const int64_t d = dims[0];
  if (g.dim() < x.dim()) {
    g = unsqueeze(g, d);
    idx = unsqueeze(idx, d);
  }
  return {scatter_add(zeros_like(x), d, idx, g)};
}

}  // namespace ember
