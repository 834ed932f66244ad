// Optimizers with PyTorch's update rules (torch.optim's default, non-fused forms). Steps run
// without recording and update parameters in place; parameters without a gradient are
// skipped, as in PyTorch.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace ember::nn {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor> params);
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  /// Frees the parameters' gradients (set_to_none, PyTorch's default).
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  const std::vector<Tensor>& params() const { return params_; }
  /// The optimizer's state (learning rate, per-parameter buffers and step counts) by name,
  /// e.g. "lr", "exp_avg.3", "step.3": what a checkpoint stores.
  virtual std::map<std::string, Tensor> state_dict() const = 0;
  /// Restores state_dict()'s output (buffers copied to each parameter's device and dtype).
  virtual void load_state_dict(const std::map<std::string, Tensor>& state) = 0;

 protected:
  std::vector<Tensor> params_;
  double lr_ = 1e-3;
};

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};

class SGD final : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options);
  void step() override;
  std::map<std::string, Tensor> state_dict() const override;
  void load_state_dict(const std::map<std::string, Tensor>& state) override;

 private:
  SGDOptions o_;
  std::vector<Tensor> momentum_;  // undefined until the first step with a gradient
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool amsgrad = false;
  /// AdamW: decoupled weight decay (p ← p·(1 − lr·wd)) instead of L2 added to the gradient.
  bool decoupled_weight_decay = false;
};

class Adam final : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options);
  void step() override;
  std::map<std::string, Tensor> state_dict() const override;
  void load_state_dict(const std::map<std::string, Tensor>& state) override;

 private:
  AdamOptions o_;
  std::vector<int64_t> steps_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_, max_exp_avg_sq_;
};

struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0;
  bool centered = false;
};

class RMSprop final : public Optimizer {
 public:
  RMSprop(std::vector<Tensor> params, RMSpropOptions options);
  void step() override;
  std::map<std::string, Tensor> state_dict() const override;
  void load_state_dict(const std::map<std::string, Tensor>& state) override;

 private:
  RMSpropOptions o_;
  std::vector<Tensor> square_avg_, grad_avg_, momentum_;
};

/// Adam with decoupled weight decay (default 0.01, as torch.optim.AdamW).
inline AdamOptions adamw_options(double lr = 1e-3, double weight_decay = 1e-2) {
  AdamOptions o;
  o.lr = lr;
  o.weight_decay = weight_decay;
  o.decoupled_weight_decay = true;
  return o;
}

}  // namespace ember::nn
