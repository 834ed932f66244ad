#include "nn/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "autograd/grad_mode.h"
#include "ops/binary.h"
#include "ops/creation.h"
#include "ops/join.h"
#include "ops/reduce.h"
#include "ops/unary.h"
#include "runtime/error.h"

namespace ember::nn {

StepLR::StepLR(Optimizer& o, int64_t step_size, double gamma) : LRScheduler(o), step_size_(step_size), gamma_(gamma) {
  EMBER_CHECK(step_size > 0, InvalidArgument, "[StepLR] step_size must be positive, got ", step_size);
  start();
}
double StepLR::lr_at(int64_t e) const { return base_lr_ * std::pow(gamma_, static_cast<double>(e / step_size_)); }

MultiStepLR::MultiStepLR(Optimizer& o, std::vector<int64_t> milestones, double gamma)
    : LRScheduler(o), milestones_(std::move(milestones)), gamma_(gamma) {
  std::sort(milestones_.begin(), milestones_.end());
  start();
}
double MultiStepLR::lr_at(int64_t e) const {
  auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), e) - milestones_.begin();
  return base_lr_ * std::pow(gamma_, static_cast<double>(passed));
}

ExponentialLR::ExponentialLR(Optimizer& o, double gamma) : LRScheduler(o), gamma_(gamma) { start(); }
double ExponentialLR::lr_at(int64_t e) const { return base_lr_ * std::pow(gamma_, static_cast<double>(e)); }

CosineAnnealingLR::CosineAnnealingLR(Optimizer& o, int64_t t_max, double eta_min)
    : LRScheduler(o), t_max_(t_max), eta_min_(eta_min) {
  EMBER_CHECK(t_max > 0, InvalidArgument, "[CosineAnnealingLR] t_max must be positive, got ", t_max);
  start();
}
double CosineAnnealingLR::lr_at(int64_t e) const {
  return eta_min_ + (base_lr_ - eta_min_) * (1 + std::cos(std::numbers::pi * static_cast<double>(e) / t_max_)) / 2;
}

LinearLR::LinearLR(Optimizer& o, double start_factor, double end_factor, int64_t total_iters)
    : LRScheduler(o), start_(start_factor), end_(end_factor), total_(total_iters) {
  EMBER_CHECK(start_factor > 0 && start_factor <= 1 && end_factor >= 0 && end_factor <= 1 && total_iters > 0,
              InvalidArgument, "[LinearLR] expected factors in (0, 1] and [0, 1] and positive total_iters");
  start();
}
double LinearLR::lr_at(int64_t e) const {
  const double t = static_cast<double>(std::min(e, total_)) / static_cast<double>(total_);
  return base_lr_ * (start_ + (end_ - start_) * t);
}

OneCycleLR::OneCycleLR(Optimizer& o, double max_lr, int64_t total_steps, double pct_start, double div_factor,
                       double final_div_factor)
    : LRScheduler(o),
      max_lr_(max_lr),
      initial_(max_lr / div_factor),
      final_(max_lr / div_factor / final_div_factor),
      total_(total_steps),
      peak_step_(pct_start * static_cast<double>(total_steps) - 1) {
  EMBER_CHECK(total_steps > 1 && pct_start > 0 && pct_start < 1, InvalidArgument,
              "[OneCycleLR] expected total_steps > 1 and pct_start in (0, 1)");
  start();
}
double OneCycleLR::lr_at(int64_t step) const {
  EMBER_CHECK(step < total_, InvalidArgument, "[OneCycleLR] stepped ", step, " times, past total_steps ", total_);
  auto anneal = [](double from, double to, double pct) { return to + (from - to) / 2 * (1 + std::cos(std::numbers::pi * pct)); };
  const double s = static_cast<double>(step);
  if (s <= peak_step_) return anneal(initial_, max_lr_, s / peak_step_);
  const double end = static_cast<double>(total_ - 1);
  return anneal(max_lr_, final_, (s - peak_step_) / (end - peak_step_));
}

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type) {
  NoGradGuard no_grad;
  TensorList norms;
  for (const Tensor& p : params)
    if (p.grad().defined()) norms.push_back(norm(p.grad(), norm_type).to(kFloat64).to(Device::cpu()));
  if (norms.empty()) return 0;
  Tensor all = stack(norms);
  const double total = std::isinf(norm_type) ? amax(all).item<double>() : norm(all, norm_type).item<double>();
  const double coef = std::min(1.0, max_norm / (total + 1e-6));
  if (coef < 1)
    for (const Tensor& p : params)
      if (p.grad().defined()) mul_(p.grad(), coef);
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip) {
  NoGradGuard no_grad;
  for (const Tensor& p : params)
    if (p.grad().defined()) clamp_(p.grad(), -clip, clip);
}

}  // namespace ember::nn
