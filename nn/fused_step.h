// Fused multi-tensor optimizer steps on CUDA: one kernel launch updates up to 48 float32
// tensors (parameters, gradients and state together), instead of several element-wise ops
// per parameter. Used by SGD, Adam/AdamW and RMSprop when every parameter is a contiguous float32
// tensor on one CUDA device; otherwise they run as ordinary ops (on the parameters' device).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/tensor.h"

namespace ember::nn::fused {

/// True when the fused kernels apply: a CUDA build, and every defined gradient's parameter a
/// contiguous float32 tensor on the same CUDA device, gradients contiguous too.
bool applies(const std::vector<Tensor>& params);

struct AdamConfig {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled_weight_decay, amsgrad;
};
/// One Adam/AdamW step over parallel lists; steps[i] is tensor i's step count (already
/// incremented). max_exp_avg_sq is read only with amsgrad.
void adam_step(const TensorList& params, const TensorList& grads, const TensorList& exp_avg,
               const TensorList& exp_avg_sq, const TensorList& max_exp_avg_sq, const std::vector<int64_t>& steps,
               const AdamConfig& config);

struct RMSpropConfig {
  double lr, alpha, eps, weight_decay, momentum;
  bool centered;
};
/// One RMSprop step; grad_avg is read with centered, buffers with momentum.
void rmsprop_step(const TensorList& params, const TensorList& grads, const TensorList& square_avg,
                  const TensorList& grad_avg, const TensorList& buffers, const RMSpropConfig& config);

struct SGDConfig {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
};
/// One SGD step; with momentum, buffers[i] is updated (first[i]: it starts as the gradient).
void sgd_step(const TensorList& params, const TensorList& grads, const TensorList& buffers,
              const std::vector<bool>& first, const SGDConfig& config);

}  // namespace ember::nn::fused
