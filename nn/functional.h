// Activations and losses built from differentiable ops (torch.nn.functional's names).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "runtime/tensor.h"

namespace ember::nn {

/// log(softmax(x)) along dim, computed stably as x - logsumexp(x).
Tensor log_softmax(const Tensor& x, int64_t dim);
Tensor softmax(const Tensor& x, int64_t dim);

enum class Reduction { None, Mean, Sum };

/// Cross-entropy of logits [N, C] against class indices [N] (int64) or class probabilities
/// [N, C] (floating point), with PyTorch's rules for class weights [C], ignore_index (rows
/// that add nothing and are not counted) and label_smoothing.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction = Reduction::Mean,
                     int64_t ignore_index = -100, double label_smoothing = 0, const Tensor& weight = Tensor());
/// Negative log-likelihood of log-probabilities [N, C] at class indices [N].
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, Reduction reduction = Reduction::Mean,
                int64_t ignore_index = -100, const Tensor& weight = Tensor());
/// Mean (or sum) squared error.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
/// Squared error below beta (scaled by 1/(2·beta)), absolute error minus beta/2 above.
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean,
                      double beta = 1.0);
/// Binary cross-entropy on logits, computed stably: max(x, 0) − x·y + log(1 + e^−|x|).
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target,
                                        Reduction reduction = Reduction::Mean);
/// Zeroes elements with probability p (Philox, reproducible from the seed) and scales the rest
/// by 1/(1 − p) while training; the identity otherwise.
Tensor dropout(const Tensor& x, double p, bool training);
/// Rows of `weight` [num_embeddings, dim] at `indices` (int64 or int32), shape indices.shape + [dim];
/// rows looked up at padding_idx pass no gradient back (PyTorch's F.embedding).
Tensor embedding(const Tensor& weight, const Tensor& indices, std::optional<int64_t> padding_idx = std::nullopt);

}  // namespace ember::nn
