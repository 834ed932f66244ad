// Learning-rate schedules (torch.optim.lr_scheduler's closed forms) and gradient clipping.
#pragma once

#include <cstdint>
#include <vector>

#include "nn/optim.h"

namespace ember::nn {

/// Sets the optimizer's learning rate from the epoch (or step) count: construction applies
/// epoch 0, each step() advances one.
class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& optimizer) : optimizer_(optimizer), base_lr_(optimizer.lr()) {}
  virtual ~LRScheduler() = default;
  void step() { optimizer_.set_lr(lr_at(++epoch_)); }
  int64_t epoch() const { return epoch_; }
  double lr() const { return optimizer_.lr(); }

 protected:
  /// Call at the end of a subclass's constructor.
  void start() { optimizer_.set_lr(lr_at(0)); }
  virtual double lr_at(int64_t epoch) const = 0;
  Optimizer& optimizer_;
  double base_lr_;
  int64_t epoch_ = 0;
};

/// base · gamma^⌊epoch / step_size⌋
class StepLR final : public LRScheduler {
 public:
  StepLR(Optimizer& o, int64_t step_size, double gamma = 0.1);
  double lr_at(int64_t epoch) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

/// base · gamma^(number of milestones ≤ epoch)
class MultiStepLR final : public LRScheduler {
 public:
  MultiStepLR(Optimizer& o, std::vector<int64_t> milestones, double gamma = 0.1);
  double lr_at(int64_t epoch) const override;

 private:
  std::vector<int64_t> milestones_;
  double gamma_;
};

/// base · gamma^epoch
class ExponentialLR final : public LRScheduler {
 public:
  ExponentialLR(Optimizer& o, double gamma);
  double lr_at(int64_t epoch) const override;

 private:
  double gamma_;
};

/// eta_min + (base − eta_min)·(1 + cos(π·epoch / t_max)) / 2
class CosineAnnealingLR final : public LRScheduler {
 public:
  CosineAnnealingLR(Optimizer& o, int64_t t_max, double eta_min = 0);
  double lr_at(int64_t epoch) const override;

 private:
  int64_t t_max_;
  double eta_min_;
};

/// Linear warm-up: base · (start + (end − start)·min(epoch, total) / total)
class LinearLR final : public LRScheduler {
 public:
  LinearLR(Optimizer& o, double start_factor = 1.0 / 3, double end_factor = 1.0, int64_t total_iters = 5);
  double lr_at(int64_t epoch) const override;

 private:
  double start_, end_;
  int64_t total_;
};

/// The 1cycle policy with cosine annealing (torch's OneCycleLR, two phases): from
/// max_lr/div_factor up to max_lr over pct_start of the steps, then down to
/// max_lr/(div_factor·final_div_factor).
class OneCycleLR final : public LRScheduler {
 public:
  OneCycleLR(Optimizer& o, double max_lr, int64_t total_steps, double pct_start = 0.3, double div_factor = 25,
             double final_div_factor = 1e4);
  double lr_at(int64_t step) const override;

 private:
  double max_lr_, initial_, final_;
  int64_t total_;
  double peak_step_;
};

/// Scales all gradients so their joint norm (p = 2, or inf) is at most max_norm, as
/// torch.nn.utils.clip_grad_norm_; returns the norm before clipping.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2);
/// Clamps every gradient element to [−clip, clip].
void clip_grad_value_(const std::vector<Tensor>& params, double clip);

}  // namespace ember::nn
