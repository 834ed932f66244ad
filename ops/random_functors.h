// How a Philox block becomes values, shared by the CPU and CUDA random kernels. Element i of a
// draw uses block offset + i / kPerBlock and the words named below, so both devices agree.
#pragma once

#include <cmath>
#include <cstdint>

#include "runtime/dtype.h"
#include "runtime/philox.h"

namespace ember::random {

/// Random mantissa bits of a uniform draw, so rounding never reaches 1: float16 has 11
/// significant bits, bfloat16 8, float32 24.
constexpr int uniform_bits(DType dtype) { return dtype == kFloat16 ? 11 : dtype == kBFloat16 ? 8 : 24; }

/// Box-Muller from two words: r * cos(theta) for even i, r * sin(theta) for odd i.
EMBER_HD inline float normal_from(uint32_t w_u1, uint32_t w_u2, bool odd) {
  float u1 = 1.0f - philox::uniform_float(w_u1, 24);  // (0, 1]: log is finite
  float u2 = philox::uniform_float(w_u2, 24);
  float r = std::sqrt(-2.0f * std::log(u1));
  float theta = 6.2831853071795864769f * u2;
  return odd ? r * std::sin(theta) : r * std::cos(theta);
}

/// Float draws use 4 elements per block (one word each; normal: elements 2k, 2k+1 of a block
/// share the word pair k). float64 draws use 2 elements per block (two words each).
EMBER_HD inline float normal_float(const philox::Block& b, int j) {
  int pair = j / 2;
  return normal_from(b.w[2 * pair], b.w[2 * pair + 1], (j & 1) != 0);
}

EMBER_HD inline double normal_double(const philox::Block& b, int j) {
  uint64_t w1 = (static_cast<uint64_t>(b.w[1]) << 32) | b.w[0];
  uint64_t w2 = (static_cast<uint64_t>(b.w[3]) << 32) | b.w[2];
  double u1 = 1.0 - philox::uniform_double(w1);
  double u2 = philox::uniform_double(w2);
  double r = std::sqrt(-2.0 * std::log(u1));
  double theta = 6.283185307179586476925 * u2;
  return (j & 1) ? r * std::sin(theta) : r * std::cos(theta);
}

/// Word j (0 or 1) of a 64-bit draw from a block.
EMBER_HD inline uint64_t word64_of(const philox::Block& b, int j) {
  return (static_cast<uint64_t>(b.w[2 * j + 1]) << 32) | b.w[2 * j];
}

}  // namespace ember::random
