// Binary element-wise ops with broadcasting and PyTorch's type promotion, and where().
#pragma once

#include <type_traits>

#include "ops/binary_functors.h"
#include "ops/op.h"

namespace ember {

/// A tensor or a number, for ops that accept either. A number becomes a 0-d "wrapped number"
/// tensor, which takes part in type promotion like a Python number in PyTorch.
class Operand {
 public:
  Operand(const Tensor& t) : t_(t) {}
  Operand(const Scalar& s);
  template <typename T>
    requires std::is_arithmetic_v<T>
  Operand(T v) : Operand(Scalar(v)) {}
  const Tensor& tensor() const { return t_; }

 private:
  Tensor t_;
};

template <typename F>
struct BinaryOp final : Op {
  F fn;
  explicit BinaryOp(F f = {}) : fn(f) {}
  const char* name() const override { return F::kName; }
  bool reads_cpu_scalars() const override { return true; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// out = cond ? a : b, element-wise with broadcasting.
struct WhereOp final : Op {
  const char* name() const override { return "where"; }
  bool reads_cpu_scalars() const override { return true; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

enum class RoundingMode { None, Trunc, Floor };

/// a + alpha * b
Tensor add(const Operand& a, const Operand& b, const Scalar& alpha = 1);
/// a - alpha * b
Tensor sub(const Operand& a, const Operand& b, const Scalar& alpha = 1);
Tensor mul(const Operand& a, const Operand& b);
/// True division (integers give float32), or rounded toward zero (Trunc) or down (Floor).
Tensor div(const Operand& a, const Operand& b, RoundingMode mode = RoundingMode::None);
Tensor floor_divide(const Operand& a, const Operand& b);
/// Python's modulo: the sign of the divisor.
Tensor remainder(const Operand& a, const Operand& b);
Tensor pow(const Operand& a, const Operand& b);
/// Element-wise max / min; NaN propagates.
Tensor maximum(const Operand& a, const Operand& b);
Tensor minimum(const Operand& a, const Operand& b);
/// relu's gradient: grad where x > 0 (or x is NaN), else 0, in one pass.
Tensor relu_backward(const Tensor& grad, const Tensor& x);
/// gelu's gradient: grad · gelu'(x), exact or of the tanh approximation, in one pass.
Tensor gelu_backward(const Tensor& grad, const Tensor& x, bool approximate_tanh);
Tensor eq(const Operand& a, const Operand& b);
Tensor ne(const Operand& a, const Operand& b);
Tensor lt(const Operand& a, const Operand& b);
Tensor le(const Operand& a, const Operand& b);
Tensor gt(const Operand& a, const Operand& b);
Tensor ge(const Operand& a, const Operand& b);
Tensor logical_and(const Operand& a, const Operand& b);
Tensor logical_or(const Operand& a, const Operand& b);
Tensor logical_xor(const Operand& a, const Operand& b);
/// Integers and bool only.
Tensor bitwise_and(const Operand& a, const Operand& b);
Tensor bitwise_or(const Operand& a, const Operand& b);
Tensor bitwise_xor(const Operand& a, const Operand& b);
/// cond ? a : b; cond must be bool.
Tensor where(const Tensor& cond, const Operand& a, const Operand& b);

// In place: the result must be castable to self's dtype and self's shape must be the
// broadcast shape. Each returns self.
const Tensor& add_(const Tensor& self, const Operand& other, const Scalar& alpha = 1);
const Tensor& sub_(const Tensor& self, const Operand& other, const Scalar& alpha = 1);
const Tensor& mul_(const Tensor& self, const Operand& other);
const Tensor& div_(const Tensor& self, const Operand& other, RoundingMode mode = RoundingMode::None);

Tensor operator+(const Operand& a, const Operand& b);
Tensor operator-(const Operand& a, const Operand& b);
Tensor operator*(const Operand& a, const Operand& b);
Tensor operator/(const Operand& a, const Operand& b);
Tensor operator-(const Tensor& a);
const Tensor& operator+=(const Tensor& self, const Operand& other);
const Tensor& operator-=(const Tensor& self, const Operand& other);
const Tensor& operator*=(const Tensor& self, const Operand& other);
const Tensor& operator/=(const Tensor& self, const Operand& other);

}  // namespace ember
