// Batch normalisation as one op: on CUDA through cuDNN's batch-norm kernels (one pass for the
// statistics and one for the output forward, one kernel backward), on the CPU and wherever cuDNN
// does not apply (half types, mixed dtypes) with public ops. The composite form took four
// full passes over the activations forward and about ten back; in a resnet the batch norms
// then cost about as much as the convolutions.
#pragma once

#include "ops/op.h"

namespace ember {

/// Inputs: x [N, C, ...], weight [C] and bias [C] (each optional).
/// Training: outputs y, the batch mean [C] and 1/sqrt(biased variance + eps) [C], both in the
/// accumulation dtype (float64 for float64 inputs, else float32); the running statistics, where
/// defined, become (1 − momentum)·r + momentum·s with the unbiased variance, as PyTorch.
/// Evaluation: output y, normalised by the running statistics.
struct BatchNormOp final : Op {
  bool training;
  double momentum, eps;
  Tensor running_mean, running_var;  // buffers updated in place, not inputs of the graph
  // Training: the batch statistics backward needs, kept here rather than by saving the
  // outputs, so that y may be modified in place (`y += identity`) before backward, as in PyTorch.
  Tensor saved_mean, saved_invstd;
  BatchNormOp(bool train, double m, double e, Tensor rm, Tensor rv)
      : training(train), momentum(m), eps(e), running_mean(std::move(rm)), running_var(std::move(rv)) {}
  const char* name() const override { return "batch_norm"; }
  EMBER_OP_FORWARDS
  EMBER_OP_BACKWARD
};

/// Training-mode batch norm's gradients in one pass. Inputs: x, grad of y, weight (optional),
/// batch mean, inverse std. Outputs: dx, dweight [C], dbias [C] (dweight and dbias in the
/// accumulation dtype). Not differentiable itself: under create_graph the public-op form runs.
struct BatchNormBackwardOp final : Op {
  double eps;
  explicit BatchNormBackwardOp(double e) : eps(e) {}
  const char* name() const override { return "batch_norm_backward"; }
  EMBER_OP_FORWARDS
};

/// Runs BatchNormOp (checks shapes and dtypes); see nn::batch_norm.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps);

/// The public-op forms, for the CPU and as the reference of the CUDA kernels.
TensorList batch_norm_forward_reference(const Tensor& x, const Tensor& weight, const Tensor& bias, bool training,
                                        double momentum, double eps, const Tensor& running_mean,
                                        const Tensor& running_var);
TensorList batch_norm_backward_reference(const Tensor& x, const Tensor& g, const Tensor& weight, const Tensor& mean,
                                         const Tensor& invstd);

}  // namespace ember
