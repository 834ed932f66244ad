#include "nn/optim.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "nn/fused_step.h"
#include "ops/binary.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/unary.h"
#include "runtime/error.h"

namespace ember::nn {

Optimizer::Optimizer(std::vector<Tensor> params) : params_(std::move(params)) {
  for (size_t i = 0; i < params_.size(); ++i)
    EMBER_CHECK(params_[i].requires_grad() && params_[i].is_leaf(), InvalidArgument, "[optimizer] parameter ", i,
                " is not a leaf tensor that requires grad");
}

void Optimizer::zero_grad() {
  for (const Tensor& p : params_) p.set_grad(Tensor());
}

namespace {

// Per-parameter buffers as "<name>.<index>" (undefined buffers are not stored).
void put_buffers(std::map<std::string, Tensor>& out, const char* name, const std::vector<Tensor>& buffers) {
  for (size_t i = 0; i < buffers.size(); ++i)
    if (buffers[i].defined()) out.emplace(str_cat(name, ".", i), buffers[i].detach());
}

void get_buffers(const std::map<std::string, Tensor>& state, const char* name, const std::vector<Tensor>& params,
                 std::vector<Tensor>& buffers) {
  for (size_t i = 0; i < params.size(); ++i) {
    auto it = state.find(str_cat(name, ".", i));
    if (it == state.end()) {
      buffers[i] = Tensor();
      continue;
    }
    EMBER_CHECK(it->second.sizes() == params[i].sizes(), ShapeMismatch, "[optimizer] state \"", it->first,
                "\" has shape ", shape_str(it->second.sizes()), " but parameter ", i, " has shape ",
                shape_str(params[i].sizes()));
    buffers[i] = it->second.to(params[i].dtype()).to(params[i].device()).clone();
  }
}

double get_lr(const std::map<std::string, Tensor>& state) {
  auto it = state.find("lr");
  EMBER_CHECK(it != state.end(), InvalidArgument, "[optimizer] state has no \"lr\"");
  return it->second.item<double>();
}

}  // namespace

// ---- SGD -------------------------------------------------------------------------------------

SGD::SGD(std::vector<Tensor> params, SGDOptions options) : Optimizer(std::move(params)), o_(options) {
  EMBER_CHECK(o_.lr >= 0, InvalidArgument, "[SGD] invalid learning rate ", o_.lr);
  EMBER_CHECK(!o_.nesterov || (o_.momentum > 0 && o_.dampening == 0), InvalidArgument,
              "[SGD] nesterov momentum requires a momentum and zero dampening");
  lr_ = o_.lr;
  momentum_.resize(params_.size());
}

void SGD::step() {
  NoGradGuard no_grad;
  if (fused::applies(params_)) {
    // New momentum buffers are kept only once the step has run: an allocation that fails
    // (OutOfMemory) leaves the optimizer as it was, and the step can be retried.
    TensorList grads, momentum = momentum_;
    std::vector<bool> first(params_.size(), false);
    for (size_t i = 0; i < params_.size(); ++i) {
      grads.push_back(params_[i].grad());
      if (o_.momentum != 0 && grads[i].defined() && !momentum[i].defined()) {
        momentum[i] = empty_like(params_[i]);
        first[i] = true;
      }
    }
    fused::sgd_step(params_, grads, momentum, first,
                    {lr_, o_.momentum, o_.dampening, o_.weight_decay, o_.nesterov});
    momentum_ = std::move(momentum);
    return;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor d = p.grad();
    if (!d.defined()) continue;
    if (o_.weight_decay != 0) d = add(d, p, o_.weight_decay);
    if (o_.momentum != 0) {
      Tensor& buf = momentum_[i];
      if (!buf.defined()) {
        buf = d.clone();
      } else {
        buf = add(mul(buf, o_.momentum), d, 1 - o_.dampening);
      }
      d = o_.nesterov ? add(d, buf, o_.momentum) : buf;
    }
    add_(p, d, -lr_);
  }
}

std::map<std::string, Tensor> SGD::state_dict() const {
  std::map<std::string, Tensor> out{{"lr", scalar_tensor(lr_)}};
  put_buffers(out, "momentum", momentum_);
  return out;
}

void SGD::load_state_dict(const std::map<std::string, Tensor>& state) {
  lr_ = get_lr(state);
  get_buffers(state, "momentum", params_, momentum_);
}

// ---- Adam / AdamW ----------------------------------------------------------------------------

Adam::Adam(std::vector<Tensor> params, AdamOptions options) : Optimizer(std::move(params)), o_(options) {
  EMBER_CHECK(o_.lr >= 0 && o_.eps >= 0 && o_.beta1 >= 0 && o_.beta1 < 1 && o_.beta2 >= 0 && o_.beta2 < 1,
              InvalidArgument, "[Adam] invalid hyper-parameters: lr ", o_.lr, ", betas (", o_.beta1, ", ", o_.beta2,
              "), eps ", o_.eps);
  lr_ = o_.lr;
  steps_.assign(params_.size(), 0);
  exp_avg_.resize(params_.size());
  exp_avg_sq_.resize(params_.size());
  max_exp_avg_sq_.resize(params_.size());
}

void Adam::step() {
  NoGradGuard no_grad;
  if (fused::applies(params_)) {
    // New state and the step counts are kept only once the step has run: an allocation that
    // fails (OutOfMemory) leaves the optimizer as it was, so a retried step is not counted twice.
    TensorList grads, exp_avg = exp_avg_, exp_avg_sq = exp_avg_sq_, max_exp_avg_sq = max_exp_avg_sq_;
    std::vector<int64_t> steps = steps_;
    for (size_t i = 0; i < params_.size(); ++i) {
      grads.push_back(params_[i].grad());
      if (!grads[i].defined()) continue;
      if (!exp_avg[i].defined()) {
        exp_avg[i] = zeros_like(params_[i]);
        exp_avg_sq[i] = zeros_like(params_[i]);
        if (o_.amsgrad) max_exp_avg_sq[i] = zeros_like(params_[i]);
      }
      ++steps[i];
    }
    fused::adam_step(params_, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, steps,
                     {lr_, o_.beta1, o_.beta2, o_.eps, o_.weight_decay, o_.decoupled_weight_decay, o_.amsgrad});
    exp_avg_ = std::move(exp_avg);
    exp_avg_sq_ = std::move(exp_avg_sq);
    max_exp_avg_sq_ = std::move(max_exp_avg_sq);
    steps_ = std::move(steps);
    return;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!exp_avg_[i].defined()) {
      exp_avg_[i] = zeros_like(p);
      exp_avg_sq_[i] = zeros_like(p);
      if (o_.amsgrad) max_exp_avg_sq_[i] = zeros_like(p);
    }
    const int64_t step = ++steps_[i];
    if (o_.weight_decay != 0) {
      if (o_.decoupled_weight_decay) mul_(p, 1 - lr_ * o_.weight_decay);
      else g = add(g, p, o_.weight_decay);
    }
    // m ← m + (1 − β1)(g − m)   (PyTorch's lerp form);  v ← β2·v + (1 − β2)·g²
    Tensor& m = exp_avg_[i];
    Tensor& v = exp_avg_sq_[i];
    add_(m, sub(g, m), 1 - o_.beta1);
    mul_(v, o_.beta2);
    add_(v, mul(g, g), 1 - o_.beta2);
    const double bias1 = 1 - std::pow(o_.beta1, static_cast<double>(step));
    const double bias2_sqrt = std::sqrt(1 - std::pow(o_.beta2, static_cast<double>(step)));
    Tensor second = v;
    if (o_.amsgrad) {
      copy_(max_exp_avg_sq_[i], maximum(max_exp_avg_sq_[i], v));
      second = max_exp_avg_sq_[i];
    }
    Tensor denom = add(div(sqrt(second), bias2_sqrt), o_.eps);
    add_(p, div(m, denom), -lr_ / bias1);
  }
}

std::map<std::string, Tensor> Adam::state_dict() const {
  std::map<std::string, Tensor> out{{"lr", scalar_tensor(lr_)}};
  for (size_t i = 0; i < params_.size(); ++i)
    if (steps_[i] > 0) out.emplace(str_cat("step.", i), scalar_tensor(steps_[i]));
  put_buffers(out, "exp_avg", exp_avg_);
  put_buffers(out, "exp_avg_sq", exp_avg_sq_);
  put_buffers(out, "max_exp_avg_sq", max_exp_avg_sq_);
  return out;
}

void Adam::load_state_dict(const std::map<std::string, Tensor>& state) {
  lr_ = get_lr(state);
  for (size_t i = 0; i < params_.size(); ++i) {
    auto it = state.find(str_cat("step.", i));
    steps_[i] = it == state.end() ? 0 : it->second.item<int64_t>();
  }
  get_buffers(state, "exp_avg", params_, exp_avg_);
  get_buffers(state, "exp_avg_sq", params_, exp_avg_sq_);
  get_buffers(state, "max_exp_avg_sq", params_, max_exp_avg_sq_);
}

// ---- RMSprop ---------------------------------------------------------------------------------

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions options) : Optimizer(std::move(params)), o_(options) {
  EMBER_CHECK(o_.lr >= 0 && o_.alpha >= 0 && o_.eps >= 0 && o_.momentum >= 0, InvalidArgument,
              "[RMSprop] invalid hyper-parameters: lr ", o_.lr, ", alpha ", o_.alpha, ", eps ", o_.eps, ", momentum ",
              o_.momentum);
  lr_ = o_.lr;
  square_avg_.resize(params_.size());
  grad_avg_.resize(params_.size());
  momentum_.resize(params_.size());
}

void RMSprop::step() {
  NoGradGuard no_grad;
  if (fused::applies(params_)) {
    // As Adam's: new state is kept only once the step has run (all or nothing on OutOfMemory).
    TensorList grads, square_avg = square_avg_, grad_avg = grad_avg_, momentum = momentum_;
    for (size_t i = 0; i < params_.size(); ++i) {
      grads.push_back(params_[i].grad());
      if (!grads[i].defined() || square_avg[i].defined()) continue;
      square_avg[i] = zeros_like(params_[i]);
      if (o_.centered) grad_avg[i] = zeros_like(params_[i]);
      if (o_.momentum > 0) momentum[i] = zeros_like(params_[i]);
    }
    fused::rmsprop_step(params_, grads, square_avg, grad_avg, momentum,
                        {lr_, o_.alpha, o_.eps, o_.weight_decay, o_.momentum, o_.centered});
    square_avg_ = std::move(square_avg);
    grad_avg_ = std::move(grad_avg);
    momentum_ = std::move(momentum);
    return;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!square_avg_[i].defined()) {
      square_avg_[i] = zeros_like(p);
      if (o_.centered) grad_avg_[i] = zeros_like(p);
      if (o_.momentum > 0) momentum_[i] = zeros_like(p);
    }
    if (o_.weight_decay != 0) g = add(g, p, o_.weight_decay);
    Tensor& sq = square_avg_[i];
    mul_(sq, o_.alpha);
    add_(sq, mul(g, g), 1 - o_.alpha);
    Tensor avg;
    if (o_.centered) {
      add_(grad_avg_[i], sub(g, grad_avg_[i]), 1 - o_.alpha);  // lerp, as PyTorch
      avg = add(sqrt(sub(sq, mul(grad_avg_[i], grad_avg_[i]))), o_.eps);
    } else {
      avg = add(sqrt(sq), o_.eps);
    }
    if (o_.momentum > 0) {
      mul_(momentum_[i], o_.momentum);
      add_(momentum_[i], div(g, avg));
      add_(p, momentum_[i], -lr_);
    } else {
      add_(p, div(g, avg), -lr_);
    }
  }
}

std::map<std::string, Tensor> RMSprop::state_dict() const {
  std::map<std::string, Tensor> out{{"lr", scalar_tensor(lr_)}};
  put_buffers(out, "square_avg", square_avg_);
  put_buffers(out, "grad_avg", grad_avg_);
  put_buffers(out, "momentum_buffer", momentum_);
  return out;
}

void RMSprop::load_state_dict(const std::map<std::string, Tensor>& state) {
  lr_ = get_lr(state);
  get_buffers(state, "square_avg", params_, square_avg_);
  get_buffers(state, "grad_avg", params_, grad_avg_);
  get_buffers(state, "momentum_buffer", params_, momentum_);
}

}  // namespace ember::nn
