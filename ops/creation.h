// Tensor factories: empty, zeros, ones, full, arange, linspace, eye, the *_like forms, and
// tensors from host data.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/op.h"
#include "runtime/dispatch.h"

namespace ember {

/// Uninitialised tensor (float32 unless options say otherwise).
Tensor empty(const Shape& shape, TensorOptions options = {});
Tensor zeros(const Shape& shape, TensorOptions options = {});
Tensor ones(const Shape& shape, TensorOptions options = {});
/// Tensor filled with `value`; its dtype follows the value (bool, int64, float32) unless set.
Tensor full(const Shape& shape, const Scalar& value, TensorOptions options = {});
/// [0, end) in steps of 1.
Tensor arange(const Scalar& end, TensorOptions options = {});
/// [start, end) in steps of `step`; int64 unless an argument is a float (then float32).
Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step = 1, TensorOptions options = {});
/// `steps` evenly spaced values from start to end inclusive.
Tensor linspace(const Scalar& start, const Scalar& end, int64_t steps, TensorOptions options = {});
/// n x m identity (m = n when negative).
Tensor eye(int64_t n, int64_t m = -1, TensorOptions options = {});

/// Options of `t` (its dtype and device), with `overrides` applied.
TensorOptions options_like(const Tensor& t, TensorOptions overrides = {});
Tensor empty_like(const Tensor& t, std::optional<DType> dtype = std::nullopt);
Tensor zeros_like(const Tensor& t, std::optional<DType> dtype = std::nullopt);
Tensor ones_like(const Tensor& t, std::optional<DType> dtype = std::nullopt);
Tensor full_like(const Tensor& t, const Scalar& value, std::optional<DType> dtype = std::nullopt);

/// A 0-d tensor holding `value` that takes part in type promotion as a number (see
/// result_type): bool, int64 or float64.
Tensor scalar_tensor(const Scalar& value, Device device = Device::cpu());

/// A CPU tensor copied from host values of a C++ element type, then converted to `dtype`
/// (default: the element type's own dtype) and moved to `device`.
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions options = {}) {
  int64_t n = checked_numel(shape, "from_vector");
  EMBER_CHECK(n == static_cast<int64_t>(values.size()), ShapeMismatch, "[from_vector] shape ",
              shape_str(shape), " holds ", n, " elements but ", values.size(), " values were given");
  Tensor t = empty_tensor(shape, dtype_of<T>, Device::cpu(), "from_vector");
  T* p = t.data_ptr<T>();
  for (int64_t i = 0; i < n; ++i) p[i] = values[i];
  if (options.dtype) t = t.to(*options.dtype);
  return t.to(options.device);
}

/// A 1-D tensor of the given values (float32 unless options say otherwise).
Tensor tensor(std::initializer_list<double> values, TensorOptions options = {});

/// Wraps external memory without copying; `keep_alive` keeps it valid.
Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device,
                 std::shared_ptr<void> keep_alive = nullptr);

// ---- op classes ---------------------------------------------------------------------------

/// Writes one value into every element of its output.
struct FillOp final : Op {
  Scalar value;
  explicit FillOp(Scalar v) : value(v) {}
  const char* name() const override { return "full"; }
  EMBER_OP_FORWARDS
};

/// out[i] = start + i * step (computed in double for floats, int64 for integers).
struct ArangeOp final : Op {
  Scalar start, step;
  ArangeOp(Scalar s, Scalar st) : start(s), step(st) {}
  const char* name() const override { return "arange"; }
  EMBER_OP_FORWARDS
};

/// PyTorch's linspace: the first half counts up from start, the second down from end.
struct LinspaceOp final : Op {
  double start, end;
  LinspaceOp(double s, double e) : start(s), end(e) {}
  const char* name() const override { return "linspace"; }
  EMBER_OP_FORWARDS
};

struct EyeOp final : Op {
  const char* name() const override { return "eye"; }
  EMBER_OP_FORWARDS
};

}  // namespace ember
