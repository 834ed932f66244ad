// Random tensors from the Philox generators (runtime/rng.h). Element i of a draw always reads
// the same Philox words (runtime/philox.h), so a seed gives the same numbers on CPU and CUDA.
#pragma once

#include <cstdint>

#include "ops/op.h"
#include "runtime/rng.h"

namespace ember {

enum class RandomKind { Uniform, Normal, Randint, Bernoulli, Randperm };

/// Fills its (contiguous) output from Philox blocks [offset, ...) under `seed`.
struct RandomOp final : Op {
  RandomKind kind;
  uint64_t seed = 0, offset = 0;
  int64_t low = 0, high = 0;  // randint
  double p = 0.5;             // bernoulli with a scalar probability (no input)
  explicit RandomOp(RandomKind k) : kind(k) {}
  const char* name() const override;
  EMBER_OP_FORWARDS
};

/// Uniform in [0, 1) (floating dtypes; float32 by default).
Tensor rand(const Shape& shape, TensorOptions options = {}, Generator* gen = nullptr);
/// Standard normal (Box-Muller).
Tensor randn(const Shape& shape, TensorOptions options = {}, Generator* gen = nullptr);
/// Integers uniform in [low, high) (int64 by default).
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions options = {}, Generator* gen = nullptr);
/// A random permutation of 0..n-1 (int64 by default).
Tensor randperm(int64_t n, TensorOptions options = {}, Generator* gen = nullptr);
/// 0/1 draws with the probabilities in `probs` (a floating tensor); same dtype and shape.
Tensor bernoulli(const Tensor& probs, Generator* gen = nullptr);
/// 0/1 draws with probability p, shaped and typed like t.
Tensor bernoulli(const Tensor& t, double p, Generator* gen = nullptr);
Tensor rand_like(const Tensor& t, Generator* gen = nullptr);

/// Draws `num_samples` category indices (int64) from each row of probs ([n] or [rows, n]:
/// non-negative, finite weights with a positive sum, not necessarily normalised). With
/// replacement every draw is independent (inverse CDF); without, the draws are distinct
/// categories, each proportional to the weights left (exponential races: the k largest of
/// log(u)/w). Bad weights or too few positive ones for distinct draws are InvalidArgument.
/// Output [num_samples] or [rows, num_samples].
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement = false, Generator* gen = nullptr);

/// multinomial's inverse-CDF step. Inputs: cdf [rows, n] and u [rows, k] (uniform in [0, 1)),
/// both float32 or float64. Output [rows, k] int64: the first i with cdf[i] > u · cdf[n − 1]
/// (so a category of weight zero is never drawn).
struct SearchCdfOp final : Op {
  const char* name() const override { return "multinomial"; }
  EMBER_OP_FORWARDS
};
Tensor randn_like(const Tensor& t, Generator* gen = nullptr);

}  // namespace ember
