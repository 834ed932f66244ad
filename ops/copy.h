// Copies and casts: copy_, to(dtype), to(device), contiguous, clone, cast, fill_, zero_.
#pragma once

#include "ops/op.h"

namespace ember {

/// Copies src into dst (broadcasting src, converting its dtype, across devices); returns dst.
const Tensor& copy_(const Tensor& dst, const Tensor& src, bool non_blocking = false);
/// A new tensor of `dtype` with t's values (PyTorch's t.to(dtype); always copies).
Tensor cast(const Tensor& t, DType dtype);
/// Writes `value` into every element; returns t.
const Tensor& fill_(const Tensor& t, const Scalar& value);
/// Writes `value` (a 0-d tensor) into every element; returns t.
const Tensor& fill_(const Tensor& t, const Tensor& value);
const Tensor& zero_(const Tensor& t);

/// Element-wise copy with dtype conversion into a same-device output (src broadcasts).
struct CopyOp final : Op {
  const char* name() const override { return "copy_"; }
  bool reads_cpu_scalars() const override { return true; }
  bool saves_inputs() const override { return false; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

}  // namespace ember
