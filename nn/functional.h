// Activations and losses built from differentiable ops (torch.nn.functional's names).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "ops/softmax.h"
#include "runtime/tensor.h"

namespace ember::nn {

/// softmax and log_softmax along a dim are ops (ops/softmax.h), named here too as PyTorch's F.
using ember::log_softmax;
using ember::softmax;

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

/// Normalises over the trailing dims named by `normalized_shape` to zero mean and unit
/// (biased) variance, then scales and shifts (F.layer_norm). float16/bfloat16 inputs are
/// normalised in float32 and rounded once at the end, as PyTorch does.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
/// {layer_norm(x + residual), x + residual} with one kernel for both (a transformer's residual
/// add and the norm after it; graph::fuse_add_layer_norm makes it from a loaded model). x and
/// residual must have one shape and dtype. Where autograd records, the add and the norm run
/// apart, so gradients flow as through the two ops.
std::pair<Tensor, Tensor> add_layer_norm(const Tensor& x, const Tensor& residual, const Shape& normalized_shape,
                                         const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                                         double eps = 1e-5);
/// x / sqrt(mean(x²) + eps) · weight over the trailing dims (F.rms_norm); eps defaults to the
/// dtype's machine epsilon, as PyTorch's. Half types computed in float32.
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                std::optional<double> eps = std::nullopt);

/// F.scaled_dot_product_attention: softmax(q kᵀ · scale + mask) v over the last two dims of
/// q [..., L, E], k [..., S, E], v [..., S, Ev]. attn_mask: bool (true = may attend) or of q's
/// dtype (added), broadcast to [..., L, S]; is_causal: query i attends keys 0..i (not with a
/// mask); scale defaults to 1/√E; dropout on the attention weights with probability
/// dropout_p; enable_gqa: q's heads (dim -3) share k's and v's in groups (grouped-query
/// attention). Half types take their softmax in float32. On CUDA, float16 and bfloat16 4-D
/// inputs with head dim 64 or 128, no mask but is_causal and no dropout run the fused kernel
/// (ops/attention.h: memory O(L + S) per head), and so do float32 inputs when no gradient is
/// wanted (inference; the float32 kernel has no backward); everything else runs the math path
/// (memory O(L·S) per head), which AttentionKernelGuard can also force.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attn_mask = Tensor(),
                                    double dropout_p = 0, bool is_causal = false,
                                    std::optional<double> scale = std::nullopt, bool enable_gqa = false);

/// The kernel scaled_dot_product_attention runs on this thread. Auto: the fused kernel where it
/// applies, else the math path. Math: always the math path (the reference). Fused: the fused
/// kernel, or an Unsupported error saying why it does not apply (never a silent fallback).
enum class AttentionKernel { Auto, Math, Fused };
AttentionKernel attention_kernel();

/// Sets the attention kernel for this thread while it lives (PyTorch's sdpa_kernel).
class AttentionKernelGuard {
 public:
  explicit AttentionKernelGuard(AttentionKernel kernel);
  ~AttentionKernelGuard();
  AttentionKernelGuard(const AttentionKernelGuard&) = delete;
  AttentionKernelGuard& operator=(const AttentionKernelGuard&) = delete;

 private:
  AttentionKernel previous_;
};

}  // namespace ember::nn
