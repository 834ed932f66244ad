// Backward of the binary ops and where. Gradients are summed back over broadcast dims to each
// input's shape.
#include <cmath>
#include <numbers>

#include "ops/binary.h"
#include "ops/creation.h"
#include "ops/grad_util.h"
#include "ops/unary.h"

namespace ember {

namespace {

using namespace binary;

// Gradients {da, db} (broadcast shape) of a ⊙ b.
template <typename F>
std::pair<Tensor, Tensor> binary_grads(const F& f, const Tensor& a, const Tensor& b, const Tensor& g) {
  if constexpr (std::is_same_v<F, Add>) {
    return {g, f.alpha == 1 ? g : mul(g, f.alpha)};
  } else if constexpr (std::is_same_v<F, Sub>) {
    return {g, mul(g, -f.alpha)};
  } else if constexpr (std::is_same_v<F, Mul>) {
    return {mul(g, b), mul(g, a)};
  } else if constexpr (std::is_same_v<F, Div>) {
    Tensor ga = div(g, b);
    return {ga, neg(mul(ga, div(a, b)))};
  } else if constexpr (std::is_same_v<F, Pow>) {
    // d/da = b·a^(b-1); d/db = a^b·log(a), taken as 0 where a = 0 and b >= 0 (as PyTorch does).
    Tensor ga = mul(g, mul(b, pow(a, sub(b, 1.0))));
    Tensor gb = mul(g, mul(pow(a, b), log(a)));
    gb = where(logical_and(eq(a, 0.0), ge(b, 0.0)), 0.0, gb);
    return {ga, gb};
  } else if constexpr (std::is_same_v<F, Maximum> || std::is_same_v<F, Minimum>) {
    // Ties split the gradient evenly, as in PyTorch.
    Tensor a_wins = std::is_same_v<F, Maximum> ? gt(a, b) : lt(a, b);
    Tensor tie = eq(a, b);
    Tensor half = mul(g, 0.5);
    Tensor ga = where(a_wins, g, where(tie, half, 0.0));
    Tensor gb = where(a_wins, 0.0, where(tie, half, g));
    return {ga, gb};
  } else if constexpr (std::is_same_v<F, ReluBackward>) {
    return {relu_backward(g, b), zeros_like(g)};  // linear in the gradient, piecewise constant in x
  } else if constexpr (std::is_same_v<F, GeluBackward>) {
    // Linear in the gradient a; in x = b, gelu'' times a.
    Tensor second;
    if (f.approximate_tanh) {
      // With u = k(x + c·x³), t = tanh(u): gelu'' = (1 − t²)(u' − x·t·u'² + 3kc·x²).
      const double k = std::sqrt(2 / std::numbers::pi), c = 0.044715;
      Tensor x2 = mul(b, b);
      Tensor t = tanh(mul(mul(b, add(mul(x2, c), 1.0)), k));
      Tensor du = mul(add(mul(x2, 3 * c), 1.0), k);
      Tensor inner = add(sub(du, mul(mul(b, t), mul(du, du))), mul(x2, 3 * k * c));
      second = mul(sub(1.0, mul(t, t)), inner);
    } else {
      // gelu'' = φ(x)·(2 − x²)
      Tensor pdf = mul(exp(mul(mul(b, b), -0.5)), 1.0 / std::sqrt(2 * std::numbers::pi));
      second = mul(pdf, sub(2.0, mul(b, b)));
    }
    return {gelu_backward(g, b, f.approximate_tanh), mul(mul(g, a), second)};
  } else if constexpr (std::is_same_v<F, DivTrunc> || std::is_same_v<F, DivFloor>) {
    return {zeros_like(g), zeros_like(g)};  // piecewise constant: zero, as PyTorch defines it
  } else if constexpr (std::is_same_v<F, Remainder>) {
    return {g, neg(mul(g, div(a, b, RoundingMode::Floor)))};
  } else {
    throw_error(ErrorCode::Unsupported, str_cat("[", F::kName, "] backward is not implemented (the op is not differentiable)"));
  }
}

}  // namespace

template <typename F>
bool BinaryOp<F>::differentiable() const {
  return std::is_same_v<F, Add> || std::is_same_v<F, Sub> || std::is_same_v<F, Mul> || std::is_same_v<F, Div> ||
         std::is_same_v<F, Pow> || std::is_same_v<F, Maximum> || std::is_same_v<F, Minimum> ||
         std::is_same_v<F, Remainder> || std::is_same_v<F, DivTrunc> || std::is_same_v<F, DivFloor> ||
         std::is_same_v<F, ReluBackward> || std::is_same_v<F, GeluBackward>;
}

template <typename F>
TensorList BinaryOp<F>::backward(const BackwardContext& ctx) const {
  const Tensor& a = ctx.inputs[0];
  const Tensor& b = ctx.inputs[1];
  auto [ga, gb] = binary_grads(fn, a, b, ctx.grads[0]);
  return {ctx.needs_input_grad(0) ? sum_to(ga, a.sizes()) : Tensor(),
          ctx.needs_input_grad(1) ? sum_to(gb, b.sizes()) : Tensor()};
}

#define X(F)                                                     \
  template bool BinaryOp<binary::F>::differentiable() const;     \
  template TensorList BinaryOp<binary::F>::backward(const BackwardContext&) const;
EMBER_FOR_EACH_BINARY(X)
#undef X

bool WhereOp::differentiable() const { return true; }

TensorList WhereOp::backward(const BackwardContext& ctx) const {
  const Tensor& cond = ctx.inputs[0];
  const Tensor& g = ctx.grads[0];
  return {Tensor(),
          ctx.needs_input_grad(1) ? sum_to(where(cond, g, 0.0), ctx.inputs[1].sizes()) : Tensor(),
          ctx.needs_input_grad(2) ? sum_to(where(cond, 0.0, g), ctx.inputs[2].sizes()) : Tensor()};
}

}  // namespace ember
