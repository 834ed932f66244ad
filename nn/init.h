// Parameter initialisers with PyTorch's formulas. They write in place without recording.
#pragma once

#include "runtime/rng.h"
#include "runtime/tensor.h"

namespace ember::nn::init {

/// (fan_in, fan_out) of a weight [out, in, k...].
std::pair<int64_t, int64_t> fans(const Tensor& w);
void uniform_(const Tensor& t, double lo, double hi, Generator* gen = nullptr);
void normal_(const Tensor& t, double mean = 0, double std = 1, Generator* gen = nullptr);
/// U(-b, b) with b = gain·√(3 / fan_in), gain = √(2 / (1 + a²)) (leaky_relu's gain).
void kaiming_uniform_(const Tensor& w, double a = 0, Generator* gen = nullptr);
void kaiming_normal_(const Tensor& w, double a = 0, Generator* gen = nullptr);
/// U(-b, b) with b = gain·√(6 / (fan_in + fan_out)).
void xavier_uniform_(const Tensor& w, double gain = 1, Generator* gen = nullptr);
void xavier_normal_(const Tensor& w, double gain = 1, Generator* gen = nullptr);

}  // namespace ember::nn::init
