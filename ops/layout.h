// Rearranging ops: tril, triu, flip, roll, repeat, constant pad.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/op.h"

namespace ember {

/// Reverses dims by copying from a view with negated strides (never handed to users).
struct FlipOp final : Op {
  std::vector<int64_t> dims;
  explicit FlipOp(std::vector<int64_t> d) : dims(std::move(d)) {}
  const char* name() const override { return "flip"; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// Fills the output with `value` and copies the (possibly cropped) input into its region.
struct PadOp final : Op {
  std::vector<int64_t> pad;  // F.pad order: last dim first, (before, after) pairs
  Scalar value;
  PadOp(std::vector<int64_t> p, Scalar v) : pad(std::move(p)), value(v) {}
  const char* name() const override { return "pad"; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// Lower triangle of the last two dims (elements with col - row <= diagonal), zero elsewhere.
Tensor tril(const Tensor& t, int64_t diagonal = 0);
/// Upper triangle (col - row >= diagonal).
Tensor triu(const Tensor& t, int64_t diagonal = 0);
Tensor flip(const Tensor& t, const std::vector<int64_t>& dims);
/// Rolls elements along dims by shifts (wrapping); no dims rolls the flattened tensor.
Tensor roll(const Tensor& t, const std::vector<int64_t>& shifts, const std::vector<int64_t>& dims = {});
/// Tiles t `repeats[d]` times along each dim (repeats may add leading dims).
Tensor repeat(const Tensor& t, const std::vector<int64_t>& repeats);
/// torch.nn.functional.pad in constant mode: pad = (left, right, top, bottom, ...) from the
/// last dim backwards; negative pads crop.
Tensor pad(const Tensor& t, const std::vector<int64_t>& pad, const Scalar& value = 0);

}  // namespace ember
