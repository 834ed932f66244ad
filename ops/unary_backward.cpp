// Backward of the unary ops: d/dx of each functor, times the output's gradient, written with
// public ops so it runs on every device and is differentiable again.
#include <cmath>
#include <numbers>

#include "ops/binary.h"
#include "ops/creation.h"
#include "ops/unary.h"

namespace ember {

namespace {

using namespace unary;

// dy/dx · g for input x (the functor F carries the op's parameters).
template <typename F>
Tensor unary_grad(const F& f, const Tensor& x, const Tensor& g) {
  if constexpr (std::is_same_v<F, Neg>) return neg(g);
  else if constexpr (std::is_same_v<F, Abs>) return mul(g, sign(x));
  else if constexpr (std::is_same_v<F, Exp>) return mul(g, exp(x));
  else if constexpr (std::is_same_v<F, Log>) return div(g, x);
  else if constexpr (std::is_same_v<F, Log1p>) return div(g, add(x, 1.0));
  else if constexpr (std::is_same_v<F, Expm1>) return mul(g, exp(x));
  else if constexpr (std::is_same_v<F, Sqrt>) return div(g, mul(sqrt(x), 2.0));
  else if constexpr (std::is_same_v<F, Rsqrt>) return mul(g, mul(pow(x, -1.5), -0.5));
  else if constexpr (std::is_same_v<F, Sin>) return mul(g, cos(x));
  else if constexpr (std::is_same_v<F, Cos>) return neg(mul(g, sin(x)));
  else if constexpr (std::is_same_v<F, Tanh>) {
    Tensor y = tanh(x);
    return mul(g, sub(1.0, mul(y, y)));
  } else if constexpr (std::is_same_v<F, Sigmoid>) {
    Tensor s = sigmoid(x);
    return mul(g, mul(s, sub(1.0, s)));
  } else if constexpr (std::is_same_v<F, Erf>) {
    return mul(g, mul(exp(neg(mul(x, x))), 2.0 / std::sqrt(std::numbers::pi)));
  } else if constexpr (std::is_same_v<F, Reciprocal>) {
    return neg(div(g, mul(x, x)));
  } else if constexpr (std::is_same_v<F, Relu>) {
    return relu_backward(g, x);
  } else if constexpr (std::is_same_v<F, Sign>) {
    return zeros_like(g);
  } else if constexpr (std::is_same_v<F, Gelu> || std::is_same_v<F, GeluTanh>) {
    return gelu_backward(g, x, std::is_same_v<F, GeluTanh>);
  } else if constexpr (std::is_same_v<F, Silu>) {
    Tensor s = sigmoid(x);
    return mul(g, mul(s, add(mul(x, sub(1.0, s)), 1.0)));
  } else if constexpr (std::is_same_v<F, Hardswish>) {
    // PyTorch: 0 below -3, x/3 + 1/2 up to 3 (inclusive), 1 above.
    Tensor mid = add(div(x, 3.0), 0.5);
    return mul(g, where(lt(x, -3.0), 0.0, where(le(x, 3.0), mid, 1.0)));
  } else if constexpr (std::is_same_v<F, Hardsigmoid>) {
    return where(logical_and(gt(x, -3.0), lt(x, 3.0)), div(g, 6.0), 0.0);
  } else if constexpr (std::is_same_v<F, Softplus>) {
    Tensor bx = mul(x, f.beta);
    return mul(g, where(gt(bx, f.threshold), 1.0, sigmoid(bx)));
  } else if constexpr (std::is_same_v<F, LeakyRelu>) {
    return where(gt(x, 0.0), g, mul(g, f.slope));
  } else if constexpr (std::is_same_v<F, Elu>) {
    return where(gt(x, 0.0), g, mul(g, mul(exp(x), f.alpha)));
  } else if constexpr (std::is_same_v<F, Clamp>) {
    // The gradient passes where x is inside [lo, hi] (bounds included), as in PyTorch.
    Tensor inside = ones_like(x, kBool);
    if (f.has_lo) inside = logical_and(inside, ge(x, f.lo));
    if (f.has_hi) inside = logical_and(inside, le(x, f.hi));
    return where(inside, g, 0.0);
  } else if constexpr (std::is_same_v<F, PowScalar>) {
    if (f.e == 0) return zeros_like(g);
    return mul(g, mul(pow(x, f.e - 1), f.e));
  } else {
    static_assert(F::kKind == UnaryKind::Predicate, "every differentiable unary op needs a derivative");
    return Tensor();
  }
}

}  // namespace

template <typename F>
bool UnaryOp<F>::differentiable() const {
  return F::kKind != UnaryKind::Predicate;
}

template <typename F>
TensorList UnaryOp<F>::backward(const BackwardContext& ctx) const {
  return {unary_grad(fn, ctx.inputs[0], ctx.grads[0])};
}

#define X(F)                                                    \
  template bool UnaryOp<unary::F>::differentiable() const;      \
  template TensorList UnaryOp<unary::F>::backward(const BackwardContext&) const;
EMBER_FOR_EACH_UNARY(X)
#undef X

}  // namespace ember
