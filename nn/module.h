// Modules: named parameters, buffers and children with PyTorch's names ("0.weight",
// "layer.bias"), train/eval, device moves and state dicts.
#pragma once

#include <map>
#include <optional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/tensor.h"

namespace ember::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }

  /// Parameters of this module and, with recurse, of its children, in registration order.
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Moves (or casts floating-point) parameters and buffers; parameters stay leaves that
  /// require grad, their gradients are dropped. The parameters become new tensors, so create
  /// optimizers after moving (as in PyTorch).
  void to(Device device);
  void to(DType dtype);
  /// Frees every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();

  /// Parameters and buffers by PyTorch's key names.
  std::map<std::string, Tensor> state_dict() const;
  /// Copies values in (shapes must match; dtype and device are converted). strict: every key
  /// present on both sides.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

 protected:
  /// Registers a parameter (a leaf that requires grad); returns its slot's index.
  size_t register_parameter(const std::string& name, Tensor value);
  size_t register_buffer(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    children_.emplace_back(name, module);
    return module;
  }
  const Tensor& param(size_t i) const { return params_[i].second; }
  const Tensor& buffer(size_t i) const { return buffers_[i].second; }

 private:
  void collect(const std::string& prefix, bool recurse, bool params, NamedTensors& out) const;
  template <typename F>
  void for_each_slot(const F& f);

  NamedTensors params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

/// y = x Wᵀ + b, with PyTorch's default initialisation (kaiming-uniform with a = √5).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, TensorOptions options = {});
  Tensor forward(const Tensor& x) override;
  const Tensor& weight() const { return param(0); }
  Tensor bias() const { return has_bias_ ? param(1) : Tensor(); }

 private:
  bool has_bias_;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

class GELU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

/// Flattens all dims after the first.
class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

/// Zeroes elements with probability p while training (nn::dropout).
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;

 private:
  double p_;
};

/// A lookup table [num_embeddings, dim] initialised N(0, 1); rows at padding_idx start at
/// zero and receive no gradient, as in PyTorch.
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = std::nullopt,
            TensorOptions options = {});
  /// indices: int64 of any shape; returns [..., embedding_dim].
  Tensor forward(const Tensor& indices) override;
  const Tensor& weight() const { return param(0); }

 private:
  std::optional<int64_t> padding_idx_;
};

/// Holds modules (named "0", "1", ...) without running them.
class ModuleList : public Module {
 public:
  void push_back(std::shared_ptr<Module> module);
  size_t size() const { return children().size(); }
  Module& operator[](size_t i) const { return *children().at(i).second; }
  Tensor forward(const Tensor& x) override;
};

/// Children run in order; named "0", "1", ... as in PyTorch.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  void push_back(std::shared_ptr<Module> module);
  Tensor forward(const Tensor& x) override;
};

}  // namespace ember::nn
