// Backward of the value reductions: the output's gradient broadcast back over the reduced dims.
#include <algorithm>
#include <cmath>

#include "ops/binary.h"
#include "ops/creation.h"
#include "ops/grad_util.h"
#include "ops/reduce.h"
#include "ops/unary.h"

namespace ember {

bool ReduceOp::differentiable() const {
  switch (kind) {
    case ReduceKind::Sum:
    case ReduceKind::Mean:
    case ReduceKind::Amax:
    case ReduceKind::Amin:
    case ReduceKind::Var:
    case ReduceKind::Std:
    case ReduceKind::Prod:
      return true;
    case ReduceKind::Norm:
      return !std::isinf(p) && p != 0;
    default:
      return false;  // any/all: bool outputs
  }
}

TensorList ReduceOp::backward(const BackwardContext& ctx) const {
  const Tensor& x = ctx.inputs[0];
  const Shape& in = x.sizes();
  Tensor g = expand_reduced(ctx.grads[0], in, dims);
  switch (kind) {
    case ReduceKind::Sum:
      return {g};
    case ReduceKind::Mean:
      return {div(g, static_cast<double>(reduced_count(in, dims)))};
    case ReduceKind::Amax:
    case ReduceKind::Amin: {
      // Evenly among the elements equal to the extreme, as PyTorch's amax/amin do.
      Tensor extreme = kind == ReduceKind::Amax ? amax(x, dims, true) : amin(x, dims, true);
      Tensor hit = eq(x, extreme);
      Tensor count = sum(hit.to(x.dtype()), dims, true);
      return {where(hit, div(g, count), 0.0)};
    }
    case ReduceKind::Prod: {
      // d/dx_i Π x = Π_{j≠i} x_j: the product over x when no element is zero; with one zero,
      // the product of the others at the zero and 0 elsewhere; with two or more, 0.
      Tensor is_zero = eq(x, 0.0);
      Tensor zeros_in = expand_reduced(sum(is_zero.to(x.dtype()), dims, true), in, dims);
      Tensor product = expand_reduced(prod(x, dims, true), in, dims);
      Tensor others_nonzero = expand_reduced(prod(where(is_zero, 1.0, x), dims, true), in, dims);
      Tensor no_zero = div(product, where(is_zero, 1.0, x));
      Tensor with_zero = where(logical_and(eq(zeros_in, 1.0), is_zero), others_nonzero, 0.0);
      return {mul(g, where(eq(zeros_in, 0.0), no_zero, with_zero))};
    }
    case ReduceKind::Var:
    case ReduceKind::Std: {
      const double denom = std::max(0.0, static_cast<double>(reduced_count(in, dims)) - correction);
      Tensor centered = sub(x, mean(x, dims, true));
      Tensor dvar = mul(centered, 2.0 / denom);
      if (kind == ReduceKind::Var) return {mul(g, dvar)};
      Tensor s = expand_reduced(ember::std(x, dims, correction, true), in, dims);
      return {div(mul(g, dvar), mul(s, 2.0))};
    }
    case ReduceKind::Norm: {
      Tensor n = expand_reduced(norm(x, p, dims, true), in, dims);
      if (p == 2) return {where(eq(n, 0.0), 0.0, mul(g, div(x, n)))};  // 0 at the origin, as PyTorch
      if (p == 1) return {mul(g, sign(x))};
      // d/dx (Σ|x|^p)^(1/p) = x·|x|^(p-2) / norm^(p-1)
      return {mul(g, div(mul(x, pow(abs(x), p - 2)), pow(n, p - 1)))};
    }
    default:
      return Op::backward(ctx);
  }
}

}  // namespace ember
