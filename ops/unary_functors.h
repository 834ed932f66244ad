// The math of every unary op, written once for the CPU and CUDA kernels (host/device code).
// operator() takes the op-math type: float for half types, otherwise the element type.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "runtime/philox.h"  // EMBER_HD

namespace ember {

/// How a unary op treats dtypes.
enum class UnaryKind {
  Math,       // integer and bool inputs compute in float32 (exp, sin, sigmoid, ...)
  FloatOnly,  // floating inputs only (activations such as gelu)
  Numeric,    // keeps the dtype; integers allowed, bool refused (neg, abs, relu, ...)
  Predicate,  // any dtype in, bool out (isnan, isinf, logical_not)
};

namespace unary {

template <typename T>
EMBER_HD inline T wrap_neg(T x) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<std::make_unsigned_t<T>>(0) - static_cast<std::make_unsigned_t<T>>(x));
  } else {
    return -x;
  }
}

#define EMBER_UNARY(Name, str, kind) \
  static constexpr const char* kName = str; \
  static constexpr UnaryKind kKind = UnaryKind::kind;

struct Neg { EMBER_UNARY(Neg, "neg", Numeric)
  template <typename T> EMBER_HD T operator()(T x) const { return wrap_neg(x); } };
struct Abs { EMBER_UNARY(Abs, "abs", Numeric)
  template <typename T> EMBER_HD T operator()(T x) const {
    if constexpr (std::is_unsigned_v<T>) return x;
    else if constexpr (std::is_integral_v<T>) return x < 0 ? wrap_neg(x) : x;
    else return std::fabs(x);
  } };
struct Exp { EMBER_UNARY(Exp, "exp", Math)
  template <typename T> EMBER_HD T operator()(T x) const { return std::exp(x); } };
struct Log { EMBER_UNARY(Log, "log", Math)
  template <typename T> EMBER_HD T operator()(T x) const { return std::log(x); } };
struct Log1p { EMBER_UNARY(Log1p, "log1p", Math)
  template <typename T> EMBER_HD T operator()(T x) const { return std::log1p(x); } };
struct Expm1 { EMBER_UNARY(Expm1, "expm1", Math)
  template <typename T> EMBER_HD T operator()(T x) const { return std::expm1(x); } };
struct Sqrt { EMBER_UNARY(Sqrt, "sqrt", Math)
  template <typename T> EMBER_HD T operator()(T x) const { return std::sqrt(x); } };
struct Rsqrt { EMBER_UNARY(Rsqrt, "rsqrt", Math)
  template <typename T> EMBER_HD T operator()(T x) const { return T(1) / std::sqrt(x); } };
struct Sin { EMBER_UNARY(Sin, "sin", Math)
  template <typename T> EMBER_HD T operator()(T x) const { return std::sin(x); } };
struct Cos { EMBER_UNARY(Cos, "cos", Math)
  template <typename T> EMBER_HD T operator()(T x) const { return std::cos(x); } };
struct Tanh { EMBER_UNARY(Tanh, "tanh", Math)
  template <typename T> EMBER_HD T operator()(T x) const { return std::tanh(x); } };
struct Sigmoid { EMBER_UNARY(Sigmoid, "sigmoid", Math)
  template <typename T> EMBER_HD T operator()(T x) const { return T(1) / (T(1) + std::exp(-x)); } };
struct Erf { EMBER_UNARY(Erf, "erf", Math)
  template <typename T> EMBER_HD T operator()(T x) const { return std::erf(x); } };
struct Reciprocal { EMBER_UNARY(Reciprocal, "reciprocal", Math)
  template <typename T> EMBER_HD T operator()(T x) const { return T(1) / x; } };
struct Relu { EMBER_UNARY(Relu, "relu", Numeric)
  template <typename T> EMBER_HD T operator()(T x) const { return x != x ? x : (x > T(0) ? x : T(0)); } };
struct Sign { EMBER_UNARY(Sign, "sign", Numeric)
  // NaN gives 0, as in PyTorch.
  template <typename T> EMBER_HD T operator()(T x) const {
    if constexpr (std::is_unsigned_v<T>) return static_cast<T>(x > T(0));
    else return static_cast<T>((T(0) < x) - (x < T(0)));
  } };
struct Gelu { EMBER_UNARY(Gelu, "gelu", FloatOnly)
  template <typename T> EMBER_HD T operator()(T x) const {
    return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
  } };
struct GeluTanh { EMBER_UNARY(GeluTanh, "gelu_tanh", FloatOnly)
  template <typename T> EMBER_HD T operator()(T x) const {
    const T inner = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
    return T(0.5) * x * (T(1) + std::tanh(inner));
  } };
struct Silu { EMBER_UNARY(Silu, "silu", FloatOnly)
  template <typename T> EMBER_HD T operator()(T x) const { return x / (T(1) + std::exp(-x)); } };
struct Hardswish { EMBER_UNARY(Hardswish, "hardswish", FloatOnly)
  template <typename T> EMBER_HD T operator()(T x) const {
    T r = x + T(3);
    r = r < T(0) ? T(0) : (r > T(6) ? T(6) : r);
    return x * r / T(6);
  } };
struct Hardsigmoid { EMBER_UNARY(Hardsigmoid, "hardsigmoid", FloatOnly)
  template <typename T> EMBER_HD T operator()(T x) const {
    T r = x + T(3);
    r = r < T(0) ? T(0) : (r > T(6) ? T(6) : r);
    return r / T(6);
  } };
struct Softplus { EMBER_UNARY(Softplus, "softplus", FloatOnly)
  double beta = 1, threshold = 20;
  template <typename T> EMBER_HD T operator()(T x) const {
    const T b = T(beta);
    return x * b > T(threshold) ? x : std::log1p(std::exp(x * b)) / b;
  } };
struct LeakyRelu { EMBER_UNARY(LeakyRelu, "leaky_relu", FloatOnly)
  double slope = 0.01;
  template <typename T> EMBER_HD T operator()(T x) const { return x > T(0) ? x : x * T(slope); } };
struct Elu { EMBER_UNARY(Elu, "elu", FloatOnly)
  double alpha = 1;
  template <typename T> EMBER_HD T operator()(T x) const { return x > T(0) ? x : T(alpha) * std::expm1(x); } };
struct Clamp { EMBER_UNARY(Clamp, "clamp", Numeric)
  bool has_lo = false, has_hi = false;
  double lo = 0, hi = 0;        // bounds for float types
  int64_t lo_i = 0, hi_i = 0;   // bounds for integer types
  // min(max(x, lo), hi) with NaN propagated, as in PyTorch (lo > hi gives hi): a NaN fails
  // both comparisons and passes through. Selects rather than branches, so the CPU loop
  // vectorises (relu6 is a clamp).
  template <typename T> EMBER_HD T operator()(T x) const {
    const T l = std::is_integral_v<T> ? static_cast<T>(lo_i) : static_cast<T>(lo);
    const T h = std::is_integral_v<T> ? static_cast<T>(hi_i) : static_cast<T>(hi);
    if (has_lo) x = x < l ? l : x;
    if (has_hi) x = x > h ? h : x;
    return x;
  } };
struct PowScalar { EMBER_UNARY(PowScalar, "pow", Numeric)
  double e = 1;
  int64_t e_i = 1;  // the exponent for integer bases (non-negative)
  template <typename T> EMBER_HD T operator()(T x) const {
    if constexpr (std::is_integral_v<T>) {
      using U = std::make_unsigned_t<T>;  // wrap on overflow instead of UB
      U base = static_cast<U>(x), r = 1;
      for (int64_t k = e_i; k > 0; k >>= 1) {
        if (k & 1) r = static_cast<U>(r * base);
        base = static_cast<U>(base * base);
      }
      return static_cast<T>(r);
    } else {
      if (e == 2) return x * x;
      if (e == 1) return x;
      if (e == 0.5) return std::sqrt(x);
      return std::pow(x, static_cast<T>(e));
    }
  } };
struct IsNan { EMBER_UNARY(IsNan, "isnan", Predicate)
  template <typename T> EMBER_HD bool operator()(T x) const { return x != x; } };
struct IsInf { EMBER_UNARY(IsInf, "isinf", Predicate)
  template <typename T> EMBER_HD bool operator()(T x) const {
    if constexpr (std::is_integral_v<T>) return false;
    else return std::isinf(x);
  } };
struct LogicalNot { EMBER_UNARY(LogicalNot, "logical_not", Predicate)
  template <typename T> EMBER_HD bool operator()(T x) const { return x == T(0); } };

#undef EMBER_UNARY

}  // namespace unary

/// Every unary functor, for explicit instantiation and registration.
#define EMBER_FOR_EACH_UNARY(X)                                                                \
  X(Neg) X(Abs) X(Exp) X(Log) X(Log1p) X(Expm1) X(Sqrt) X(Rsqrt) X(Sin) X(Cos) X(Tanh) X(Sigmoid) \
  X(Erf) X(Reciprocal) X(Relu) X(Sign) X(Gelu) X(GeluTanh) X(Silu) X(Hardswish) X(Hardsigmoid)     \
  X(Softplus) X(LeakyRelu) X(Elu) X(Clamp) X(PowScalar) X(IsNan) X(IsInf) X(LogicalNot)

}  // namespace ember
