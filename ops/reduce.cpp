#include "ops/reduce.h"

#include <algorithm>
#include <cmath>

#include "ops/binary.h"
#include "ops/copy.h"
#include "ops/register.h"
#include "ops/unary.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember {

const char* ReduceOp::name() const {
  switch (kind) {
    case ReduceKind::Sum: return "sum";
    case ReduceKind::Mean: return "mean";
    case ReduceKind::Prod: return "prod";
    case ReduceKind::Amax: return "amax";
    case ReduceKind::Amin: return "amin";
    case ReduceKind::Any: return "any";
    case ReduceKind::All: return "all";
    case ReduceKind::Var: return "var";
    case ReduceKind::Std: return "std";
    case ReduceKind::Norm: return "norm";
  }
  return "reduce";
}

const char* ArgReduceOp::name() const {
  if (with_values) return is_max ? "max" : "min";
  return is_max ? "argmax" : "argmin";
}

Shape reduced_shape(const Shape& shape, const DimList& dims, bool keepdim) {
  Shape out;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    bool reduced = std::binary_search(dims.begin(), dims.end(), d);
    if (!reduced) out.push_back(shape[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

namespace {

Tensor run_reduce(const std::shared_ptr<ReduceOp>& op, const Tensor& x, bool keepdim, DType out) {
  return apply1(op, {x}, {reduced_shape(x.sizes(), op->dims, keepdim), out});
}

Tensor value_reduce(ReduceKind kind, const char* name, const Tensor& t, const DimList& dims, bool keepdim) {
  return run_reduce(std::make_shared<ReduceOp>(kind, reduction_dims(dims, t.dim(), name)), t, keepdim, t.dtype());
}

// Reductions without an identity (max, argmax, ...) refuse a zero-size reduced dim.
void check_nonempty_reduction(const Tensor& t, const DimList& dims, const char* op) {
  for (int64_t d : dims)
    EMBER_CHECK(t.sizes()[d] != 0, InvalidArgument, "[", op, "] cannot reduce over dim ", d,
                " of size 0 (shape ", shape_str(t.sizes()), "): the result has no identity");
}

DType floating_input(const Tensor& t, std::optional<DType> dtype, const char* op) {
  DType d = dtype.value_or(t.dtype());
  EMBER_CHECK(is_floating(d), Unsupported, "[", op, "] expected a floating-point input, got ", d,
              " (pass a floating dtype)");
  return d;
}

Tensor arg_reduce(const Tensor& t, bool is_max, std::optional<int64_t> dim, bool keepdim) {
  const char* name = is_max ? "argmax" : "argmin";
  DimList dims = dim ? reduction_dims({*dim}, t.dim(), name) : reduction_dims({}, t.dim(), name);
  EMBER_CHECK(t.numel() > 0 || dim, InvalidArgument, "[", name, "] cannot reduce an empty tensor");
  check_nonempty_reduction(t, dims, name);
  EMBER_CHECK(t.dtype() != kBool, Unsupported, "[", name, "] not supported for dtype bool");
  // Without dim, keepdim keeps every dim as size 1, as in PyTorch.
  Shape shape = reduced_shape(t.sizes(), dims, keepdim);
  return apply1(std::make_shared<ArgReduceOp>(is_max, false, dims), {t}, {shape, kInt64});
}

ValuesIndices extreme_with_indices(const Tensor& t, bool is_max, int64_t dim, bool keepdim) {
  const char* name = is_max ? "max" : "min";
  DimList dims = reduction_dims({dim}, t.dim(), name);
  check_nonempty_reduction(t, dims, name);
  Shape shape = reduced_shape(t.sizes(), dims, keepdim);
  TensorList r = apply(std::make_shared<ArgReduceOp>(is_max, true, dims), {t},
                       {{shape, t.dtype()}, {shape, kInt64}});
  return {r[0], r[1]};
}

Tensor full_extreme(const Tensor& t, ReduceKind kind, const char* name) {
  EMBER_CHECK(t.numel() > 0, InvalidArgument, "[", name, "] cannot reduce an empty tensor (shape ",
              shape_str(t.sizes()), "); pass a dim");
  return value_reduce(kind, name, t, {}, false);
}

}  // namespace

Tensor sum(const Tensor& t, const DimList& dims, bool keepdim, std::optional<DType> dtype) {
  DType d = dtype.value_or(is_floating(t.dtype()) ? t.dtype() : kInt64);
  Tensor x = t.to(d);
  return run_reduce(std::make_shared<ReduceOp>(ReduceKind::Sum, reduction_dims(dims, t.dim(), "sum")), x,
                    keepdim, d);
}

Tensor mean(const Tensor& t, const DimList& dims, bool keepdim, std::optional<DType> dtype) {
  DType d = floating_input(t, dtype, "mean");
  return run_reduce(std::make_shared<ReduceOp>(ReduceKind::Mean, reduction_dims(dims, t.dim(), "mean")),
                    t.to(d), keepdim, d);
}

Tensor prod(const Tensor& t, const DimList& dims, bool keepdim, std::optional<DType> dtype) {
  DType d = dtype.value_or(is_floating(t.dtype()) ? t.dtype() : kInt64);
  return run_reduce(std::make_shared<ReduceOp>(ReduceKind::Prod, reduction_dims(dims, t.dim(), "prod")),
                    t.to(d), keepdim, d);
}

Tensor max(const Tensor& t) { return full_extreme(t, ReduceKind::Amax, "max"); }
Tensor min(const Tensor& t) { return full_extreme(t, ReduceKind::Amin, "min"); }
ValuesIndices max(const Tensor& t, int64_t dim, bool keepdim) { return extreme_with_indices(t, true, dim, keepdim); }
ValuesIndices min(const Tensor& t, int64_t dim, bool keepdim) { return extreme_with_indices(t, false, dim, keepdim); }
Tensor argmax(const Tensor& t, std::optional<int64_t> dim, bool keepdim) { return arg_reduce(t, true, dim, keepdim); }
Tensor argmin(const Tensor& t, std::optional<int64_t> dim, bool keepdim) { return arg_reduce(t, false, dim, keepdim); }

Tensor amax(const Tensor& t, const DimList& dims, bool keepdim) {
  check_nonempty_reduction(t, reduction_dims(dims, t.dim(), "amax"), "amax");
  return value_reduce(ReduceKind::Amax, "amax", t, dims, keepdim);
}

Tensor amin(const Tensor& t, const DimList& dims, bool keepdim) {
  check_nonempty_reduction(t, reduction_dims(dims, t.dim(), "amin"), "amin");
  return value_reduce(ReduceKind::Amin, "amin", t, dims, keepdim);
}

Tensor var(const Tensor& t, const DimList& dims, double correction, bool keepdim) {
  floating_input(t, std::nullopt, "var");
  auto op = std::make_shared<ReduceOp>(ReduceKind::Var, reduction_dims(dims, t.dim(), "var"));
  op->correction = correction;
  return run_reduce(op, t, keepdim, t.dtype());
}

Tensor std(const Tensor& t, const DimList& dims, double correction, bool keepdim) {
  floating_input(t, std::nullopt, "std");
  auto op = std::make_shared<ReduceOp>(ReduceKind::Std, reduction_dims(dims, t.dim(), "std"));
  op->correction = correction;
  return run_reduce(op, t, keepdim, t.dtype());
}

Tensor logsumexp(const Tensor& t, const DimList& dims, bool keepdim) {
  DType out = is_floating(t.dtype()) ? t.dtype() : kDefaultFloat;
  // Half types go through float32: their exp terms would otherwise round before the sum.
  Tensor x = t.to(is_reduced_float(out) ? kFloat32 : out);
  DimList d = reduction_dims(dims, x.dim(), "logsumexp");
  if (x.numel() == 0) return log(sum(exp(x), d, keepdim)).to(out);
  // Shift by the max so exp never overflows; an infinite max shifts by 0 instead.
  Tensor m = amax(x, d, true);
  Tensor shift = where(isinf(m), 0.0, m);
  Tensor r = add(log(sum(exp(sub(x, shift)), d, true)), shift);
  return (keepdim ? r : reshape(r, reduced_shape(x.sizes(), d, false))).to(out);
}

Tensor any(const Tensor& t, const DimList& dims, bool keepdim) {
  auto op = std::make_shared<ReduceOp>(ReduceKind::Any, reduction_dims(dims, t.dim(), "any"));
  return run_reduce(op, t, keepdim, t.dtype() == kUInt8 ? kUInt8 : kBool);
}

Tensor all(const Tensor& t, const DimList& dims, bool keepdim) {
  auto op = std::make_shared<ReduceOp>(ReduceKind::All, reduction_dims(dims, t.dim(), "all"));
  return run_reduce(op, t, keepdim, t.dtype() == kUInt8 ? kUInt8 : kBool);
}

Tensor norm(const Tensor& t, double p, const DimList& dims, bool keepdim) {
  floating_input(t, std::nullopt, "norm");
  auto op = std::make_shared<ReduceOp>(ReduceKind::Norm, reduction_dims(dims, t.dim(), "norm"));
  op->p = p;
  return run_reduce(op, t, keepdim, t.dtype());
}

void register_reduction_ops(OpRegistry& r) {
  OpSupport s{.cuda_kernel = true};
  OpSupport d{.cuda_kernel = true, .backward = true};
  r.add("reduction", "sum", kAllSet, d);
  r.add("reduction", "mean", kFloatingSet, d);
  r.add("reduction", "prod", kAllSet, d);
  r.add("reduction", "max", kNumericSet | kBoolSet, d);
  r.add("reduction", "min", kNumericSet | kBoolSet, d);
  r.add("reduction", "argmax", kNumericSet, s);
  r.add("reduction", "argmin", kNumericSet, s);
  r.add("reduction", "amax", kAllSet, d);
  r.add("reduction", "amin", kAllSet, d);
  r.add("reduction", "var", kFloatingSet, d);
  r.add("reduction", "std", kFloatingSet, d);
  r.add("reduction", "logsumexp", kAllSet, d);
  r.add("reduction", "any", kAllSet, s);
  r.add("reduction", "all", kAllSet, s);
  r.add("reduction", "norm", kFloatingSet, d);
}

}  // namespace ember
