// From a runtime DType to a CUDA element type, and conversions that give the same bits as the
// CPU's (runtime/dispatch.h): half types round through float, float-to-integer goes through
// int64 with NaN and out-of-range mapped to INT64_MIN.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "runtime/dtype.h"
#include "runtime/philox.h"  // EMBER_HD

namespace ember {
[[noreturn]] void throw_unsupported_dtype(const char* op, DType dtype);
}

namespace ember::cuda_ops {

using half = __half;
using bfloat16 = __nv_bfloat16;

template <typename T> inline constexpr bool is_half_v = std::is_same_v<T, half> || std::is_same_v<T, bfloat16>;
template <typename T> inline constexpr bool is_float_v = std::is_floating_point_v<T> || is_half_v<T>;
/// The type element-wise math runs in: float for half types.
template <typename T> using opmath_t = std::conditional_t<is_half_v<T>, float, T>;
/// The type reductions accumulate in: float for float32 and the half types (as PyTorch does on
/// CUDA), double for float64, int64 for integers and bool.
template <typename T> using acc_t =
    std::conditional_t<std::is_same_v<T, double>, double, std::conditional_t<is_float_v<T>, float, int64_t>>;

template <uint32_t Set, typename F>
decltype(auto) dispatch(DType dtype, const char* op, F&& f) {
#define EMBER_CUDA_CASE(D, T) \
  case D:                     \
    if constexpr ((Set & dtype_bit(D)) != 0) return f.template operator()<T>(); \
    break;
  switch (dtype) {
    EMBER_CUDA_CASE(kBool, bool)
    EMBER_CUDA_CASE(kUInt8, uint8_t)
    EMBER_CUDA_CASE(kInt8, int8_t)
    EMBER_CUDA_CASE(kInt32, int32_t)
    EMBER_CUDA_CASE(kInt64, int64_t)
    EMBER_CUDA_CASE(kFloat16, half)
    EMBER_CUDA_CASE(kBFloat16, bfloat16)
    EMBER_CUDA_CASE(kFloat32, float)
    EMBER_CUDA_CASE(kFloat64, double)
  }
#undef EMBER_CUDA_CASE
  throw_unsupported_dtype(op, dtype);
}

EMBER_HD inline float to_float(half x) { return __half2float(x); }
EMBER_HD inline float to_float(bfloat16 x) { return __bfloat162float(x); }

EMBER_HD inline int64_t float_to_int64(double v) {
  if (!(v >= -9.2233720368547758e18 && v < 9.2233720368547758e18)) return INT64_MIN;
  return static_cast<int64_t>(v);
}

/// Converts one element between any two CUDA element types.
template <typename To, typename From>
EMBER_HD inline To convert(From x) {
  if constexpr (std::is_same_v<To, From>) {
    return x;
  } else if constexpr (is_half_v<From>) {
    return convert<To>(to_float(x));
  } else if constexpr (std::is_same_v<To, bool>) {
    return x != From(0);
  } else if constexpr (std::is_same_v<From, bool>) {
    return convert<To>(x ? 1 : 0);
  } else if constexpr (std::is_same_v<To, half>) {
    return __float2half_rn(static_cast<float>(x));
  } else if constexpr (std::is_same_v<To, bfloat16>) {
    return __float2bfloat16_rn(static_cast<float>(x));
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    return static_cast<To>(float_to_int64(static_cast<double>(x)));
  } else {
    return static_cast<To>(x);
  }
}

}  // namespace ember::cuda_ops
