// Indexing ops: index_select, gather, scatter, scatter_add, masked_fill.
#pragma once

#include <cstdint>

#include "ops/binary.h"
#include "ops/op.h"

namespace ember {

/// out = t with dim indexed by a 1-D index tensor.
struct IndexSelectOp final : Op {
  int64_t dim;
  explicit IndexSelectOp(int64_t d) : dim(d) {}
  const char* name() const override { return "index_select"; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// out[..i..] = t[..index[..i..]..] along dim.
struct GatherOp final : Op {
  int64_t dim;
  explicit GatherOp(int64_t d) : dim(d) {}
  const char* name() const override { return "gather"; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// In place on its output: out[..index[..i..]..] = src[..i..] (or += with accumulate).
/// Runs in row-major order, so duplicate indices resolve deterministically.
struct ScatterOp final : Op {
  int64_t dim;
  bool accumulate;
  ScatterOp(int64_t d, bool acc) : dim(d), accumulate(acc) {}
  const char* name() const override { return accumulate ? "scatter_add" : "scatter"; }
  EMBER_OP_FORWARDS
};

/// index_select's backward along dim 0 (an embedding's): out[index[i]] += g[i] for the rows
/// of a contiguous [n, d] gradient and an int64 index of n in-range rows, into [rows, d] zeros.
/// Each row's contributions are summed in the order of i, on every device (deterministic);
/// CUDA sorts the index (stably) and gives each run of equal rows to one thread per column.
struct IndexAddRowsOp final : Op {
  const char* name() const override { return "index_add_rows"; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// Slices of t along dim at the positions in a 1-D int64 or int32 index.
Tensor index_select(const Tensor& t, int64_t dim, const Tensor& index);
/// Gathers t along dim at index (same rank as t).
Tensor gather(const Tensor& t, int64_t dim, const Tensor& index);
/// A copy of t with src written at index along dim.
Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
/// A copy of t with `value` written at index along dim.
Tensor scatter(const Tensor& t, int64_t dim, const Tensor& index, const Scalar& value);
/// A copy of t with src added at index along dim (duplicates accumulate).
Tensor scatter_add(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
/// In-place forms; return t.
const Tensor& scatter_(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
const Tensor& scatter_add_(const Tensor& t, int64_t dim, const Tensor& index, const Tensor& src);
/// t where mask is false, value where it is true; mask (bool) broadcasts to t.
Tensor masked_fill(const Tensor& t, const Tensor& mask, const Operand& value);

}  // namespace ember
