#include "runtime/dtype.h"

#include <string>

namespace ember {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Bool: return "bool";
    case DType::UInt8: return "uint8";
    case DType::Int8: return "int8";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
  }
  return "unknown";
}

std::optional<DType> dtype_from_name(std::string_view name) {
  if (name.starts_with("torch.")) name.remove_prefix(6);
  for (DType t : kAllDTypes)
    if (name == dtype_name(t)) return t;
  if (name == "float") return kFloat32;
  if (name == "double") return kFloat64;
  if (name == "half") return kFloat16;
  if (name == "long") return kInt64;
  if (name == "int") return kInt32;
  return std::nullopt;
}

std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

namespace {
// Rank inside a category decides the winner when both inputs share the category.
int category(DType t) { return t == DType::Bool ? 0 : is_integral(t) ? 1 : 2; }
}  // namespace

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  int ca = category(a), cb = category(b);
  if (ca != cb) return ca > cb ? a : b;
  if (ca == 1) {
    // Signed/unsigned mixes: uint8 with a wider signed type gives the signed type.
    if (a == DType::UInt8 || b == DType::UInt8) {
      DType other = a == DType::UInt8 ? b : a;
      return other == DType::Int8 ? DType::Int32 : other;
    }
    return itemsize(a) >= itemsize(b) ? a : b;
  }
  // Floats: half and bfloat16 meet at float32; otherwise the wider one.
  if (is_reduced_float(a) && is_reduced_float(b)) return DType::Float32;
  return itemsize(a) >= itemsize(b) ? a : b;
}

bool can_cast(DType from, DType to) {
  if (is_floating(from) && !is_floating(to)) return false;
  if (from != DType::Bool && to == DType::Bool) return false;
  return true;
}

std::vector<DType> dtypes_in(uint32_t set) {
  std::vector<DType> out;
  for (DType t : kAllDTypes)
    if (set & dtype_bit(t)) out.push_back(t);
  return out;
}

}  // namespace ember
