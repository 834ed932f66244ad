// Reductions over any set of dims (empty dims = all), with keepdim.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ops/op.h"

namespace ember {

using DimList = std::vector<int64_t>;

enum class ReduceKind { Sum, Mean, Prod, Amax, Amin, Any, All, Var, Std, Norm };

/// Value reductions: one output of the reduced shape.
struct ReduceOp final : Op {
  ReduceKind kind;
  DimList dims;             // wrapped and sorted
  double correction = 1;    // var, std
  double p = 2;             // norm
  ReduceOp(ReduceKind k, DimList d) : kind(k), dims(std::move(d)) {}
  const char* name() const override;
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// Index reductions: max/min with indices (two outputs) and argmax/argmin (one output).
struct ArgReduceOp final : Op {
  bool is_max;
  bool with_values;  // max/min(dim) return values too
  DimList dims;
  ArgReduceOp(bool mx, bool values, DimList d) : is_max(mx), with_values(values), dims(std::move(d)) {}
  const char* name() const override;
  bool saves_outputs() const override { return true; }  // backward scatters at the indices
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

struct ValuesIndices {
  Tensor values;
  Tensor indices;  // int64
};

/// Sum; integer and bool inputs sum in int64. `dtype` casts the input first.
Tensor sum(const Tensor& t, const DimList& dims = {}, bool keepdim = false,
           std::optional<DType> dtype = std::nullopt);
/// Mean of a floating tensor (or of the input cast to `dtype`).
Tensor mean(const Tensor& t, const DimList& dims = {}, bool keepdim = false,
            std::optional<DType> dtype = std::nullopt);
Tensor prod(const Tensor& t, const DimList& dims = {}, bool keepdim = false,
            std::optional<DType> dtype = std::nullopt);
/// Largest element (NaN if any); throws for an empty tensor.
Tensor max(const Tensor& t);
Tensor min(const Tensor& t);
/// Largest elements along dim and their first indices.
ValuesIndices max(const Tensor& t, int64_t dim, bool keepdim = false);
ValuesIndices min(const Tensor& t, int64_t dim, bool keepdim = false);
/// Index of the first largest element along dim, or in the flattened tensor.
Tensor argmax(const Tensor& t, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& t, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor amax(const Tensor& t, const DimList& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& t, const DimList& dims = {}, bool keepdim = false);
/// Variance with Bessel's correction by default (correction = 1).
Tensor var(const Tensor& t, const DimList& dims = {}, double correction = 1, bool keepdim = false);
Tensor std(const Tensor& t, const DimList& dims = {}, double correction = 1, bool keepdim = false);
/// log(sum(exp(t))), computed stably.
Tensor logsumexp(const Tensor& t, const DimList& dims = {}, bool keepdim = false);
/// Bool (uint8 for uint8 input, as in PyTorch).
Tensor any(const Tensor& t, const DimList& dims = {}, bool keepdim = false);
Tensor all(const Tensor& t, const DimList& dims = {}, bool keepdim = false);
/// Vector p-norm over dims (p = 2 by default; inf, -inf and 0 allowed).
Tensor norm(const Tensor& t, double p = 2, const DimList& dims = {}, bool keepdim = false);

/// Output shape of reducing `shape` over sorted `dims`.
Shape reduced_shape(const Shape& shape, const DimList& dims, bool keepdim);

}  // namespace ember
