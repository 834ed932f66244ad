// The math of every binary op, written once for the CPU and CUDA kernels (host/device code).
// Both operands arrive in the compute dtype (op-math type for half types).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "runtime/philox.h"  // EMBER_HD

namespace ember {

/// How a binary op treats dtypes.
enum class BinaryKind {
  Arith,    // result_type of the operands, returned in it
  TrueDiv,  // like Arith, but integer results become float32
  Compare,  // computed in the result_type, bool out
  Logical,  // truthiness of each operand, bool out
  Bitwise,  // integers and bool only
};

namespace binary {

// Integer arithmetic that wraps instead of overflowing into undefined behaviour.
template <typename T> EMBER_HD inline T wadd(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    return a + b;
  }
}
template <typename T> EMBER_HD inline T wsub(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) - static_cast<U>(b)));
  } else {
    return a - b;
  }
}
template <typename T> EMBER_HD inline T wmul(T a, T b) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
  } else {
    return a * b;
  }
}
// Truncating integer division; x / 0 gives 0 (callers refuse zero divisors first) and
// MIN / -1 wraps, so the hardware never traps.
template <typename T> EMBER_HD inline T idiv(T a, T b) {
  if (b == 0) return 0;
  if constexpr (std::is_signed_v<T>) {
    if (b == -1) return wsub(T(0), a);
  }
  return static_cast<T>(a / b);
}
template <typename T> EMBER_HD inline T imod(T a, T b) {
  if (b == 0) return 0;
  if constexpr (std::is_signed_v<T>) {
    if (b == -1) return 0;
  }
  return static_cast<T>(a % b);
}

#define EMBER_BINARY(str, kind, allow_bool) \
  static constexpr const char* kName = str; \
  static constexpr BinaryKind kKind = BinaryKind::kind; \
  static constexpr bool kAllowBool = allow_bool;

struct Add { EMBER_BINARY("add", Arith, true)
  double alpha = 1;
  int64_t alpha_i = 1;
  template <typename T> EMBER_HD T operator()(T a, T b) const {
    if constexpr (std::is_same_v<T, bool>) return a || (b && alpha_i != 0);
    else if constexpr (std::is_integral_v<T>) return wadd(a, wmul(static_cast<T>(alpha_i), b));
    else return alpha == 1 ? a + b : a + static_cast<T>(alpha) * b;
  } };
struct Sub { EMBER_BINARY("sub", Arith, false)
  double alpha = 1;
  int64_t alpha_i = 1;
  template <typename T> EMBER_HD T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) return wsub(a, wmul(static_cast<T>(alpha_i), b));
    else return alpha == 1 ? a - b : a - static_cast<T>(alpha) * b;
  } };
struct Mul { EMBER_BINARY("mul", Arith, true)
  template <typename T> EMBER_HD T operator()(T a, T b) const {
    if constexpr (std::is_same_v<T, bool>) return a && b;
    else return wmul(a, b);
  } };
struct Div { EMBER_BINARY("div", TrueDiv, false)
  template <typename T> EMBER_HD T operator()(T a, T b) const { return a / b; } };
struct DivTrunc { EMBER_BINARY("div", Arith, false)
  template <typename T> EMBER_HD T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) return idiv(a, b);
    else return std::trunc(a / b);
  } };
struct DivFloor { EMBER_BINARY("div", Arith, false)
  template <typename T> EMBER_HD T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      if constexpr (std::is_signed_v<T>) {
        if ((a < 0) != (b < 0) && b != 0) {
          T q = idiv(a, b);
          return imod(a, b) != 0 ? wsub(q, T(1)) : q;
        }
      }
      return idiv(a, b);
    } else {
      // PyTorch's div_floor_floating: exact floor of the true quotient.
      if (b == 0) return a / b;
      T mod = std::fmod(a, b);
      T div = (a - mod) / b;
      if (mod != 0 && (b < 0) != (mod < 0)) div -= T(1);
      if (div == 0) return std::copysign(T(0), a / b);
      T floordiv = std::floor(div);
      if (div - floordiv > T(0.5)) floordiv += T(1);
      return floordiv;
    }
  } };
struct Remainder { EMBER_BINARY("remainder", Arith, false)
  // Python's modulo: the result takes the sign of the divisor.
  template <typename T> EMBER_HD T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      T r = imod(a, b);
      if constexpr (std::is_signed_v<T>) {
        if (r != 0 && (r < 0) != (b < 0)) r = wadd(r, b);
      }
      return r;
    } else {
      T r = std::fmod(a, b);
      if (r != 0 && (b < 0) != (r < 0)) r += b;
      return r;
    }
  } };
struct Pow { EMBER_BINARY("pow", Arith, false)
  template <typename T> EMBER_HD T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      if constexpr (std::is_signed_v<T>) {
        if (b < 0) return a == 1 ? T(1) : a == -1 ? ((b & 1) ? T(-1) : T(1)) : T(0);
      }
      T r = 1, base = a;
      for (T k = b; k > 0; k >>= 1) {
        if (k & 1) r = wmul(r, base);
        base = wmul(base, base);
      }
      return r;
    } else {
      return std::pow(a, b);
    }
  } };
struct Maximum { EMBER_BINARY("maximum", Arith, true)
  template <typename T> EMBER_HD T operator()(T a, T b) const {
    if (a != a) return a;
    if (b != b) return b;
    return a > b ? a : b;
  } };
struct Minimum { EMBER_BINARY("minimum", Arith, true)
  template <typename T> EMBER_HD T operator()(T a, T b) const {
    if (a != a) return a;
    if (b != b) return b;
    return a < b ? a : b;
  } };
struct ReluBackward { EMBER_BINARY("relu_backward", Arith, false)
  // relu's gradient: the incoming gradient a where relu's input b is above 0 (NaN included, as
  // PyTorch's threshold_backward), else 0; one pass instead of a comparison and a select.
  template <typename T> EMBER_HD T operator()(T a, T b) const { return b <= T(0) ? T(0) : a; } };
struct GeluBackward { EMBER_BINARY("gelu_backward", TrueDiv, false)
  // gelu's gradient in one pass: the incoming gradient a times gelu'(b) for gelu's input b,
  // exact (Φ(b) + b·φ(b)) or of the tanh approximation; the composite took about ten passes.
  bool approximate_tanh = false;
  template <typename T> EMBER_HD T operator()(T a, T b) const {
    if (approximate_tanh) {
      const T k = T(0.79788456080286535588), c = T(0.044715), b2 = b * b;
      const T t = std::tanh(k * b * (T(1) + c * b2));
      return a * (T(0.5) * (T(1) + t) + T(0.5) * k * b * (T(1) - t * t) * (T(1) + T(3) * c * b2));
    }
    const T cdf = T(0.5) * (T(1) + std::erf(b * T(0.70710678118654752440)));
    const T pdf = std::exp(T(-0.5) * b * b) * T(0.39894228040143267794);
    return a * (cdf + b * pdf);
  } };
struct Eq { EMBER_BINARY("eq", Compare, true)
  template <typename T> EMBER_HD bool operator()(T a, T b) const { return a == b; } };
struct Ne { EMBER_BINARY("ne", Compare, true)
  template <typename T> EMBER_HD bool operator()(T a, T b) const { return a != b; } };
struct Lt { EMBER_BINARY("lt", Compare, true)
  template <typename T> EMBER_HD bool operator()(T a, T b) const { return a < b; } };
struct Le { EMBER_BINARY("le", Compare, true)
  template <typename T> EMBER_HD bool operator()(T a, T b) const { return a <= b; } };
struct Gt { EMBER_BINARY("gt", Compare, true)
  template <typename T> EMBER_HD bool operator()(T a, T b) const { return a > b; } };
struct Ge { EMBER_BINARY("ge", Compare, true)
  template <typename T> EMBER_HD bool operator()(T a, T b) const { return a >= b; } };
struct LogicalAnd { EMBER_BINARY("logical_and", Logical, true)
  template <typename T> EMBER_HD bool operator()(T a, T b) const { return a != T(0) && b != T(0); } };
struct LogicalOr { EMBER_BINARY("logical_or", Logical, true)
  template <typename T> EMBER_HD bool operator()(T a, T b) const { return a != T(0) || b != T(0); } };
struct LogicalXor { EMBER_BINARY("logical_xor", Logical, true)
  template <typename T> EMBER_HD bool operator()(T a, T b) const { return (a != T(0)) != (b != T(0)); } };
struct BitwiseAnd { EMBER_BINARY("bitwise_and", Bitwise, true)
  template <typename T> EMBER_HD T operator()(T a, T b) const { return static_cast<T>(a & b); } };
struct BitwiseOr { EMBER_BINARY("bitwise_or", Bitwise, true)
  template <typename T> EMBER_HD T operator()(T a, T b) const { return static_cast<T>(a | b); } };
struct BitwiseXor { EMBER_BINARY("bitwise_xor", Bitwise, true)
  template <typename T> EMBER_HD T operator()(T a, T b) const { return static_cast<T>(a ^ b); } };

#undef EMBER_BINARY

}  // namespace binary

/// Every binary functor, for explicit instantiation and registration.
#define EMBER_FOR_EACH_BINARY(X)                                                                 \
  X(Add) X(Sub) X(Mul) X(Div) X(DivTrunc) X(DivFloor) X(Remainder) X(Pow) X(Maximum) X(Minimum)     \
  X(ReluBackward) X(GeluBackward)                                                                  \
  X(Eq) X(Ne) X(Lt) X(Le) X(Gt) X(Ge) X(LogicalAnd) X(LogicalOr) X(LogicalXor) X(BitwiseAnd)       \
  X(BitwiseOr) X(BitwiseXor)

}  // namespace ember
