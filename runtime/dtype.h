// Element types and PyTorch's type-promotion rules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string_view>
#include <vector>

namespace ember {

enum class DType : uint8_t {
  Bool,
  UInt8,
  Int8,
  Int32,
  Int64,
  Float16,
  BFloat16,
  Float32,
  Float64,
};

inline constexpr int kNumDTypes = 9;
inline constexpr DType kBool = DType::Bool;
inline constexpr DType kUInt8 = DType::UInt8;
inline constexpr DType kInt8 = DType::Int8;
inline constexpr DType kInt32 = DType::Int32;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kFloat16 = DType::Float16;
inline constexpr DType kBFloat16 = DType::BFloat16;
inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;

/// Every dtype, in enum order.
inline constexpr DType kAllDTypes[kNumDTypes] = {kBool,    kUInt8,    kInt8,    kInt32,  kInt64,
                                                 kFloat16, kBFloat16, kFloat32, kFloat64};

/// Bytes per element.
constexpr size_t itemsize(DType t) {
  switch (t) {
    case DType::Bool:
    case DType::UInt8:
    case DType::Int8: return 1;
    case DType::Float16:
    case DType::BFloat16: return 2;
    case DType::Int32:
    case DType::Float32: return 4;
    case DType::Int64:
    case DType::Float64: return 8;
  }
  return 0;
}

constexpr bool is_floating(DType t) {
  return t == DType::Float16 || t == DType::BFloat16 || t == DType::Float32 || t == DType::Float64;
}
/// Integer types, bool excluded.
constexpr bool is_integral(DType t) {
  return t == DType::UInt8 || t == DType::Int8 || t == DType::Int32 || t == DType::Int64;
}
constexpr bool is_reduced_float(DType t) { return t == DType::Float16 || t == DType::BFloat16; }

/// "float32", "int64", ... (PyTorch's names without the torch. prefix).
const char* dtype_name(DType t);
/// Parses a dtype name; accepts PyTorch's aliases ("float", "half", "long", ...).
std::optional<DType> dtype_from_name(std::string_view name);
std::ostream& operator<<(std::ostream& os, DType t);

/// PyTorch's torch.promote_types. One deviation: uint8 with int8 gives int32 (PyTorch: int16,
/// which ember does not have).
DType promote_types(DType a, DType b);

/// True when a value of type `from` may be written into a tensor of type `to` by an in-place
/// op, following PyTorch's torch.can_cast (no float -> integer, no number -> bool).
bool can_cast(DType from, DType to);

/// The dtype of floating results computed from integer inputs (PyTorch's default dtype).
inline constexpr DType kDefaultFloat = DType::Float32;

/// Sets of dtypes, as bit masks (an op's supported dtypes, a dispatch's allowed types).
constexpr uint32_t dtype_bit(DType t) { return 1u << static_cast<int>(t); }
inline constexpr uint32_t kBoolSet = dtype_bit(kBool);
inline constexpr uint32_t kIntegralSet = dtype_bit(kUInt8) | dtype_bit(kInt8) | dtype_bit(kInt32) | dtype_bit(kInt64);
inline constexpr uint32_t kFloatingSet = dtype_bit(kFloat16) | dtype_bit(kBFloat16) | dtype_bit(kFloat32) | dtype_bit(kFloat64);
inline constexpr uint32_t kNumericSet = kIntegralSet | kFloatingSet;
inline constexpr uint32_t kAllSet = kNumericSet | kBoolSet;
/// The dtypes of a set, in enum order.
std::vector<DType> dtypes_in(uint32_t set);

}  // namespace ember
