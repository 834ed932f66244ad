// Backward of the copy, matrix-product and layout ops.
#include "ops/binary.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/join.h"
#include "ops/layout.h"
#include "ops/matmul.h"
#include "ops/view.h"

namespace ember {

// Copies and casts: the gradient flows back in the input's dtype (OpNode casts it).
bool CopyOp::differentiable() const { return true; }
TensorList CopyOp::backward(const BackwardContext& ctx) const { return {ctx.grads[0]}; }

// C = act(alpha·A·B + beta·bias) over a batch (act' folded into G first): dA = alpha·G·Bᵀ, dB = alpha·Aᵀ·G, dbias = beta·G.
bool GemmOp::differentiable() const { return true; }
TensorList GemmOp::backward(const BackwardContext& ctx) const {
  const Tensor& a = ctx.inputs[0];
  const Tensor& b = ctx.inputs[1];
  Tensor g = ctx.grads[0];
  auto scaled = [](const Tensor& t, double s) { return s == 1 ? t : mul(t, s); };
  if (activation != GemmActivation::kNone) {
    // A fused activation (inference graphs make these): the pre-activation is recomputed with
    // public ops rather than kept, so the forward stays one GEMM and this stays differentiable.
    Tensor pre = scaled(bmm(a, b), alpha);
    if (has_bias) pre = add(pre, scaled(ctx.inputs[2], beta));
    g = activation == GemmActivation::kRelu ? relu_backward(g, pre) : gelu_backward(g, pre, true);
  }
  TensorList out(ctx.inputs.size());
  if (ctx.needs_input_grad(0)) out[0] = scaled(bmm(g, transpose(b, 1, 2)), alpha);
  if (ctx.needs_input_grad(1)) out[1] = scaled(bmm(transpose(a, 1, 2), g), alpha);
  if (has_bias && ctx.needs_input_grad(2)) out[2] = scaled(g, beta);
  return out;
}

// cat: each input's slice of the gradient.
bool CatOp::differentiable() const { return true; }
TensorList CatOp::backward(const BackwardContext& ctx) const {
  const Tensor& g = ctx.grads[0];
  std::vector<int64_t> sizes;
  for (const Tensor& t : ctx.inputs)
    if (t.dim() == g.dim()) sizes.push_back(t.sizes()[dim]);
  std::vector<Tensor> pieces = split(g, sizes, dim);
  TensorList out;
  size_t k = 0;
  for (const Tensor& t : ctx.inputs) {
    if (t.dim() == g.dim()) out.push_back(pieces[k++]);
    else out.push_back(zeros_like(t));  // a legacy empty 1-D input that cat skipped
  }
  return out;
}

// Constant pad: crop the gradient back (negative pads crop).
bool PadOp::differentiable() const { return true; }
TensorList PadOp::backward(const BackwardContext& ctx) const {
  std::vector<int64_t> crop(pad.size());
  for (size_t i = 0; i < pad.size(); ++i) crop[i] = -pad[i];
  return {ember::pad(ctx.grads[0], crop)};
}

bool FlipOp::differentiable() const { return true; }
TensorList FlipOp::backward(const BackwardContext& ctx) const { return {flip(ctx.grads[0], dims)}; }

}  // namespace ember
