#include "nn/module.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "nn/functional.h"
#include "nn/init.h"
#include "ops/binary.h"
#include "ops/index.h"
#include "ops/copy.h"
#include "ops/creation.h"
#include "ops/matmul.h"
#include "ops/unary.h"
#include "ops/view.h"
#include "runtime/error.h"

namespace ember::nn {

// ---- Module ----------------------------------------------------------------------------------

size_t Module::register_parameter(const std::string& name, Tensor value) {
  value.requires_grad_();
  params_.emplace_back(name, std::move(value));
  return params_.size() - 1;
}

size_t Module::register_buffer(const std::string& name, Tensor value) {
  buffers_.emplace_back(name, std::move(value));
  return buffers_.size() - 1;
}

void Module::collect(const std::string& prefix, bool recurse, bool params, NamedTensors& out) const {
  for (const auto& [name, t] : params ? params_ : buffers_) out.emplace_back(prefix + name, t);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", true, params, out);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect("", recurse, true, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect("", recurse, false, out);
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

template <typename F>
void Module::for_each_slot(const F& f) {
  for (auto& [name, t] : params_) f(t, true);
  for (auto& [name, t] : buffers_) f(t, false);
  for (auto& [name, child] : children_) child->for_each_slot(f);
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  for_each_slot([&](Tensor& t, bool is_param) {
    t = t.to(device).detach();
    if (is_param) t.requires_grad_();
  });
}

void Module::to(DType dtype) {
  NoGradGuard no_grad;
  for_each_slot([&](Tensor& t, bool is_param) {
    if (!is_floating(t.dtype())) return;
    t = t.to(dtype).detach();
    if (is_param) t.requires_grad_();
  });
}

void Module::zero_grad() {
  for (const Tensor& p : parameters()) p.set_grad(Tensor());
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : named_parameters()) out.emplace(name, t.detach());
  for (auto& [name, t] : named_buffers()) out.emplace(name, t.detach());
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  NoGradGuard no_grad;
  NamedTensors mine = named_parameters();
  NamedTensors buffers = named_buffers();
  mine.insert(mine.end(), buffers.begin(), buffers.end());
  size_t used = 0;
  for (auto& [name, t] : mine) {
    auto it = state.find(name);
    if (it == state.end()) {
      EMBER_CHECK(!strict, InvalidArgument, "[load_state_dict] missing key \"", name, "\"");
      continue;
    }
    EMBER_CHECK(it->second.sizes() == t.sizes(), ShapeMismatch, "[load_state_dict] \"", name, "\" has shape ",
                shape_str(it->second.sizes()), " but the module expects ", shape_str(t.sizes()));
    copy_(t, it->second);
    ++used;
  }
  if (strict && used != state.size()) {
    for (const auto& [key, value] : state) {
      bool known = false;
      for (auto& [name, t] : mine) known = known || name == key;
      EMBER_CHECK(known, InvalidArgument, "[load_state_dict] unexpected key \"", key, "\"");
    }
  }
}

// ---- layers ----------------------------------------------------------------------------------

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, TensorOptions options) : has_bias_(bias) {
  EMBER_CHECK(in_features > 0 && out_features > 0, InvalidArgument, "[Linear] expected positive sizes, got ",
              in_features, " and ", out_features);
  if (!options.dtype) options.dtype = kFloat32;
  Tensor w = empty({out_features, in_features}, options);
  init::kaiming_uniform_(w, std::sqrt(5.0));
  register_parameter("weight", w);
  if (bias) {
    const double bound = 1 / std::sqrt(static_cast<double>(in_features));
    Tensor b = empty({out_features}, options);
    init::uniform_(b, -bound, bound);
    register_parameter("bias", b);
  }
}

Tensor Linear::forward(const Tensor& x) {
  return has_bias_ ? linear(x, weight(), bias()) : linear(x, weight());
}

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor GELU::forward(const Tensor& x) { return gelu(x); }
Tensor Flatten::forward(const Tensor& x) { return flatten(x, 1); }

Dropout::Dropout(double p) : p_(p) {
  EMBER_CHECK(p >= 0 && p <= 1, InvalidArgument, "[Dropout] probability must be in [0, 1], got ", p);
}
Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training()); }

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx,
                     TensorOptions options) {
  EMBER_CHECK(num_embeddings > 0 && embedding_dim > 0, InvalidArgument, "[Embedding] expected positive sizes, got ",
              num_embeddings, " and ", embedding_dim);
  if (padding_idx) {
    if (*padding_idx < 0) *padding_idx += num_embeddings;
    EMBER_CHECK(*padding_idx >= 0 && *padding_idx < num_embeddings, InvalidArgument, "[Embedding] padding_idx ",
                *padding_idx, " is outside [0, ", num_embeddings, ")");
  }
  padding_idx_ = padding_idx;
  if (!options.dtype) options.dtype = kFloat32;
  Tensor w = empty({num_embeddings, embedding_dim}, options);
  init::normal_(w);
  if (padding_idx_) {
    NoGradGuard no_grad;
    zero_(w.select(0, *padding_idx_));
  }
  register_parameter("weight", w);
}

Tensor Embedding::forward(const Tensor& indices) { return embedding(weight(), indices, padding_idx_); }

void ModuleList::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(children().size()), std::move(module));
}

Tensor ModuleList::forward(const Tensor&) {
  throw_error(ErrorCode::InvalidArgument, "[ModuleList] has no forward; call its modules");
}

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) {
  for (auto& m : modules) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  register_module(std::to_string(children().size()), std::move(module));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const auto& [name, child] : children()) h = child->forward(h);
  return h;
}

}  // namespace ember::nn
