// Unary element-wise ops. Each is a functor in unary_functors.h run by UnaryOp<F>.
#pragma once

#include <optional>
#include <string_view>

#include "ops/op.h"
#include "ops/unary_functors.h"

namespace ember {

template <typename F>
struct UnaryOp final : Op {
  F fn;
  explicit UnaryOp(F f = {}) : fn(f) {}
  const char* name() const override { return F::kName; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

Tensor neg(const Tensor& t);
Tensor abs(const Tensor& t);
Tensor exp(const Tensor& t);
Tensor log(const Tensor& t);
Tensor log1p(const Tensor& t);
Tensor expm1(const Tensor& t);
Tensor sqrt(const Tensor& t);
Tensor rsqrt(const Tensor& t);
Tensor sin(const Tensor& t);
Tensor cos(const Tensor& t);
Tensor tanh(const Tensor& t);
Tensor sigmoid(const Tensor& t);
Tensor erf(const Tensor& t);
Tensor reciprocal(const Tensor& t);
Tensor relu(const Tensor& t);
Tensor sign(const Tensor& t);
/// GELU; approximate is "none" (erf form) or "tanh".
Tensor gelu(const Tensor& t, std::string_view approximate = "none");
Tensor silu(const Tensor& t);
Tensor hardswish(const Tensor& t);
Tensor hardsigmoid(const Tensor& t);
Tensor softplus(const Tensor& t, double beta = 1, double threshold = 20);
Tensor leaky_relu(const Tensor& t, double negative_slope = 0.01);
Tensor elu(const Tensor& t, double alpha = 1);
/// Clamps to [min, max] (either may be absent); the dtype follows PyTorch's promotion with
/// the bounds (an integer tensor clamped by 0.5 becomes float32).
Tensor clamp(const Tensor& t, std::optional<Scalar> min, std::optional<Scalar> max = std::nullopt);
/// In-place clamp; returns t.
const Tensor& clamp_(const Tensor& t, std::optional<Scalar> min, std::optional<Scalar> max = std::nullopt);
/// In-place relu and gelu ("none" or "tanh"); return t. For fused GEMM epilogues off
/// cuBLASLt (ops/matmul.h) and callers that own their buffer.
const Tensor& relu_(const Tensor& t);
const Tensor& gelu_(const Tensor& t, std::string_view approximate = "none");
/// t ** exponent.
Tensor pow(const Tensor& t, const Scalar& exponent);
Tensor isnan(const Tensor& t);
Tensor isinf(const Tensor& t);
Tensor logical_not(const Tensor& t);

}  // namespace ember
