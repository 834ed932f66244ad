// Per-tensor autograd state, attached to a TensorImpl only when a tensor takes part in autograd.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "runtime/tensor.h"

namespace ember {

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;                          // accumulated gradient (leaves, retain_grad)
  std::shared_ptr<Node> grad_fn;        // null for leaves
  uint32_t output_nr = 0;               // which output of grad_fn
  std::weak_ptr<Node> grad_accumulator;  // leaves: their AccumulateGrad node, while a graph holds it
  std::vector<GradHook> hooks;          // leaves: run before accumulation
  std::vector<std::function<void(const Tensor&)>> post_accumulate_hooks;
};

namespace autograd {

/// The tensor's meta, created on first use.
AutogradMeta& meta_of(const Tensor& t);
/// The tensor's meta or nullptr.
inline AutogradMeta* find_meta(const Tensor& t) { return t.defined() ? t.impl().autograd.get() : nullptr; }

}  // namespace autograd
}  // namespace ember
