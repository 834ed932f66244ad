// Activations and losses built from differentiable ops (torch.nn.functional's names).
#pragma once

#include <cstdint>
#include <string_view>

#include "runtime/tensor.h"

namespace ember::nn {

/// log(softmax(x)) along dim, computed stably as x - logsumexp(x).
Tensor log_softmax(const Tensor& x, int64_t dim);
Tensor softmax(const Tensor& x, int64_t dim);

enum class Reduction { None, Mean, Sum };

/// Cross-entropy of logits [N, C] against class indices [N] (int64), like
/// torch.nn.functional.cross_entropy with label_smoothing. Entries equal to ignore_index add
/// nothing and are not counted by the mean.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction = Reduction::Mean,
                     int64_t ignore_index = -100, double label_smoothing = 0);
/// Mean (or sum) squared error.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);

}  // namespace ember::nn
