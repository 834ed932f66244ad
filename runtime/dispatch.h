// From a runtime DType to a C++ element type on the CPU, and safe conversions between them.
// CPU half types are Eigen's; CUDA code has its own mapping (ops/cuda/dispatch.cuh).
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "runtime/dtype.h"
#include "runtime/error.h"

namespace ember {

using Half = Eigen::half;
using BFloat16 = Eigen::bfloat16;

template <typename T> struct DTypeOf;
template <> struct DTypeOf<bool> { static constexpr DType value = kBool; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = kUInt8; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = kInt8; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = kInt32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = kInt64; };
template <> struct DTypeOf<Half> { static constexpr DType value = kFloat16; };
template <> struct DTypeOf<BFloat16> { static constexpr DType value = kBFloat16; };
template <> struct DTypeOf<float> { static constexpr DType value = kFloat32; };
template <> struct DTypeOf<double> { static constexpr DType value = kFloat64; };
/// The DType of a C++ element type.
template <typename T> inline constexpr DType dtype_of = DTypeOf<T>::value;

template <typename T> inline constexpr bool is_half_v = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;
template <typename T> inline constexpr bool is_float_v = std::is_floating_point_v<T> || is_half_v<T>;

/// The type element-wise math runs in: float for half types, the type itself otherwise.
template <typename T> using opmath_t = std::conditional_t<is_half_v<T>, float, T>;
/// The type CPU reductions accumulate in: double for every float type, int64 for integers.
template <typename T> using acc_t = std::conditional_t<is_float_v<T>, double, int64_t>;

// ---- dispatch ----------------------------------------------------------------------------

[[noreturn]] void throw_unsupported_dtype(const char* op, DType dtype);

/// Calls f.template operator()<T>() with the CPU type T of `dtype` when `dtype` is in Set;
/// otherwise throws Unsupported naming `op`. Only types in Set are instantiated.
template <uint32_t Set, typename F>
decltype(auto) dispatch(DType dtype, const char* op, F&& f) {
#define EMBER_DISPATCH_CASE(D, T) \
  case D:                         \
    if constexpr ((Set & dtype_bit(D)) != 0) return f.template operator()<T>(); \
    break;
  switch (dtype) {
    EMBER_DISPATCH_CASE(kBool, bool)
    EMBER_DISPATCH_CASE(kUInt8, uint8_t)
    EMBER_DISPATCH_CASE(kInt8, int8_t)
    EMBER_DISPATCH_CASE(kInt32, int32_t)
    EMBER_DISPATCH_CASE(kInt64, int64_t)
    EMBER_DISPATCH_CASE(kFloat16, Half)
    EMBER_DISPATCH_CASE(kBFloat16, BFloat16)
    EMBER_DISPATCH_CASE(kFloat32, float)
    EMBER_DISPATCH_CASE(kFloat64, double)
  }
#undef EMBER_DISPATCH_CASE
  throw_unsupported_dtype(op, dtype);
}

// ---- conversions ----------------------------------------------------------------------------

/// Float to int64 with defined results where C++ has none: NaN and out-of-range give INT64_MIN
/// (what x86 hardware gives), so a conversion is never undefined behaviour.
inline int64_t float_to_int64(double v) {
  if (!(v >= -9.2233720368547758e18 && v < 9.2233720368547758e18)) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

/// Converts one element between any two CPU element types.
template <typename To, typename From>
inline To convert(From x) {
  if constexpr (std::is_same_v<To, From>) {
    return x;
  } else if constexpr (std::is_same_v<To, bool>) {
    return static_cast<opmath_t<From>>(x) != opmath_t<From>(0);
  } else if constexpr (std::is_same_v<From, bool>) {
    return To(x ? 1 : 0);
  } else if constexpr (is_half_v<From>) {
    return convert<To>(static_cast<float>(x));
  } else if constexpr (is_half_v<To>) {
    return To(static_cast<float>(x));
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    // Through int64 then wrap (integer narrowing is modular in C++20), as PyTorch's CPU casts
    // behave on x86.
    return static_cast<To>(float_to_int64(static_cast<double>(x)));
  } else {
    return static_cast<To>(x);
  }
}

}  // namespace ember
