// Shape helpers for backward formulas, written with public ops (so they are differentiable).
#pragma once

#include "ops/reduce.h"
#include "runtime/tensor.h"

namespace ember {

/// Sums a broadcast gradient back to `shape`: over leading dims and dims of size 1 in `shape`.
Tensor sum_to(const Tensor& grad, const Shape& shape);
/// A reduction's gradient `grad` (shape of the output, keepdim or not) broadcast back over the
/// reduced `dims` of `input_shape` (empty dims: all).
Tensor expand_reduced(const Tensor& grad, const Shape& input_shape, const DimList& dims);
/// Number of elements reduced.
int64_t reduced_count(const Shape& input_shape, const DimList& dims);

}  // namespace ember
