// The backward engine: runs a graph's nodes in dependency order, summing gradients that meet.
#pragma once

#include <functional>

#include "runtime/tensor.h"

namespace ember {

/// Accumulates d(outputs)/d(leaf) · grad_outputs into every leaf's grad(). grad_outputs may
/// be empty for one-element outputs (ones). retain_graph keeps saved tensors for another
/// backward; create_graph records the backward itself, for higher-order gradients.
void backward(const TensorList& outputs, const TensorList& grad_outputs = {}, bool retain_graph = false,
              bool create_graph = false);

/// Returns d(outputs)/d(inputs) · grad_outputs without touching any grad(), like
/// torch.autograd.grad. An input the outputs do not depend on is an error unless allow_unused
/// (then its gradient is undefined). retain_graph defaults to create_graph.
TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs = {},
                std::optional<bool> retain_graph = std::nullopt, bool create_graph = false, bool allow_unused = false);

namespace autograd {

/// Runs `callback` once the backward() now running on this thread has accumulated every
/// leaf's gradient, before backward() returns (PyTorch's queue_callback; data parallelism
/// finishes its gradient all-reduce there). Callbacks run in the order queued and may queue
/// more. Throws InvalidArgument outside a backward() pass (grad() runs no callbacks: it
/// accumulates nothing).
void queue_callback(std::function<void()> callback);

}  // namespace autograd
}  // namespace ember
