// Small helpers shared by the cuDNN-backed ops.
#pragma once

#include "runtime/tensor.h"

namespace ember::cudnn_util {

/// cuDNN's alpha and beta: doubles for float64 tensors, floats otherwise. Not copyable (it
/// points into itself).
struct Scale {
  double one_d = 1, zero_d = 0;
  float one_f = 1, zero_f = 0;
  const void* one;
  const void* zero;
  explicit Scale(DType t)
      : one(t == kFloat64 ? static_cast<const void*>(&one_d) : &one_f),
        zero(t == kFloat64 ? static_cast<const void*>(&zero_d) : &zero_f) {}
  Scale(const Scale&) = delete;
  Scale& operator=(const Scale&) = delete;
};

/// A tensor's data, or null for an absent tensor (cuDNN's "not given").
inline void* data_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }

}  // namespace ember::cudnn_util
