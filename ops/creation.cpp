#include "ops/creation.h"

#include <cmath>

#include "ops/copy.h"
#include "ops/register.h"

namespace ember {

namespace {
DType dtype_for(const Scalar& v) { return v.is_bool() ? kBool : v.is_integral() ? kInt64 : kFloat32; }
}  // namespace

Tensor empty(const Shape& shape, TensorOptions options) {
  return empty_tensor(shape, options.dtype.value_or(kFloat32), options.device, "empty");
}

Tensor full(const Shape& shape, const Scalar& value, TensorOptions options) {
  DType dtype = options.dtype.value_or(dtype_for(value));
  return apply1(std::make_shared<FillOp>(value), {}, {shape, dtype}, options.device);
}

Tensor zeros(const Shape& shape, TensorOptions options) {
  if (!options.dtype) options.dtype = kFloat32;
  return full(shape, 0, options);
}

Tensor ones(const Shape& shape, TensorOptions options) {
  if (!options.dtype) options.dtype = kFloat32;
  return full(shape, 1, options);
}

Tensor arange(const Scalar& end, TensorOptions options) { return arange(0, end, 1, options); }

Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step, TensorOptions options) {
  bool any_float = start.is_floating() || end.is_floating() || step.is_floating();
  DType dtype = options.dtype.value_or(any_float ? kFloat32 : kInt64);
  double s = start.to_double(), e = end.to_double(), st = step.to_double();
  EMBER_CHECK(std::isfinite(s) && std::isfinite(e), InvalidArgument,
              "[arange] start and end must be finite, got ", s, " and ", e);
  EMBER_CHECK(st != 0, InvalidArgument, "[arange] step must be nonzero");
  EMBER_CHECK((st > 0 && e >= s) || (st < 0 && e <= s), InvalidArgument,
              "[arange] upper bound and larger bound inconsistent with step sign (start ", s,
              ", end ", e, ", step ", st, ")");
  double size_d = std::ceil((e - s) / st);
  EMBER_CHECK(size_d < 9.2e18, InvalidArgument, "[arange] too many elements: ", size_d);
  int64_t n = static_cast<int64_t>(size_d);
  return apply1(std::make_shared<ArangeOp>(start, step), {}, {{n}, dtype}, options.device);
}

Tensor linspace(const Scalar& start, const Scalar& end, int64_t steps, TensorOptions options) {
  EMBER_CHECK(steps >= 0, InvalidArgument, "[linspace] number of steps must be non-negative, got ", steps);
  DType dtype = options.dtype.value_or(kFloat32);
  return apply1(std::make_shared<LinspaceOp>(start.to_double(), end.to_double()), {}, {{steps}, dtype},
                options.device);
}

Tensor eye(int64_t n, int64_t m, TensorOptions options) {
  if (m < 0) m = n;
  EMBER_CHECK(n >= 0, InvalidArgument, "[eye] n must be non-negative, got ", n);
  return apply1(std::make_shared<EyeOp>(), {}, {{n, m}, options.dtype.value_or(kFloat32)}, options.device);
}

TensorOptions options_like(const Tensor& t, TensorOptions overrides) {
  return {overrides.dtype ? overrides.dtype : t.dtype(), t.device()};
}

Tensor empty_like(const Tensor& t, std::optional<DType> dtype) {
  return empty(t.sizes(), {dtype.value_or(t.dtype()), t.device()});
}
Tensor zeros_like(const Tensor& t, std::optional<DType> dtype) {
  return zeros(t.sizes(), {dtype.value_or(t.dtype()), t.device()});
}
Tensor ones_like(const Tensor& t, std::optional<DType> dtype) {
  return ones(t.sizes(), {dtype.value_or(t.dtype()), t.device()});
}
Tensor full_like(const Tensor& t, const Scalar& value, std::optional<DType> dtype) {
  return full(t.sizes(), value, {dtype.value_or(t.dtype()), t.device()});
}

Tensor scalar_tensor(const Scalar& value, Device device) {
  Tensor t = empty_tensor({}, value.dtype(), Device::cpu(), "scalar_tensor");
  switch (value.kind()) {
    case Scalar::Kind::Bool: *t.data_ptr<bool>() = value.to<bool>(); break;
    case Scalar::Kind::Int: *t.data_ptr<int64_t>() = value.to<int64_t>(); break;
    case Scalar::Kind::Float: *t.data_ptr<double>() = value.to<double>(); break;
  }
  t.impl().wrapped_number = true;
  if (!device.is_cpu()) {
    t = t.to(device);
    t.impl().wrapped_number = true;
  }
  return t;
}

Tensor tensor(std::initializer_list<double> values, TensorOptions options) {
  if (!options.dtype) options.dtype = kFloat32;
  return from_vector(std::vector<double>(values), {static_cast<int64_t>(values.size())}, options);
}

Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device,
                 std::shared_ptr<void> keep_alive) {
  int64_t n = checked_numel(shape, "from_blob");
  EMBER_CHECK(data != nullptr || n == 0, InvalidArgument, "[from_blob] data is null");
  Storage s = wrap_storage(data, static_cast<size_t>(n) * itemsize(dtype), device, std::move(keep_alive));
  return make_tensor(std::move(s), shape, contiguous_strides(shape), 0, dtype);
}

void register_creation_ops(OpRegistry& r) {
  for (const char* name : {"empty", "zeros", "ones", "full", "empty_like", "zeros_like", "ones_like",
                           "full_like"})
    r.add("creation", name, kAllSet, {.cuda_kernel = true});
  r.add("creation", "arange", kNumericSet, {.cuda_kernel = true});
  r.add("creation", "linspace", kNumericSet, {.cuda_kernel = true});
  r.add("creation", "eye", kAllSet, {.cuda_kernel = true});
}

}  // namespace ember
