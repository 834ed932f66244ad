// The autograd graph: a Node per recorded op, edges to the nodes of its inputs. A node's
// apply() takes the gradients of its outputs and returns the gradients of its inputs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace ember {

class Op;

/// Input `input_nr` of `node` (null node: the input needs no gradient).
struct Edge {
  std::shared_ptr<Node> node;
  uint32_t input_nr = 0;
};

/// What a node needs to make a zero gradient for an output nobody used.
struct OutputInfo {
  Shape shape;
  DType dtype;
  Device device;
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node() = default;
  virtual std::string name() const = 0;
  /// Gradients of the inputs (one per next edge; undefined: none) from those of the outputs
  /// (one per output; undefined entries are zeros).
  virtual TensorList apply(const TensorList& grad_outputs) = 0;
  /// Frees saved tensors once a backward pass that does not retain the graph is done with them.
  virtual void release() {}

  std::vector<Edge> next_edges;    // one per input of the forward op
  std::vector<OutputInfo> outputs;  // one per output of the forward op
  uint64_t sequence_nr;             // creation order: later nodes run first when both are ready
  std::map<uint32_t, std::vector<GradHook>> output_hooks;  // tensor hooks of non-leaf outputs
  std::map<uint32_t, std::vector<GradHook>> retain_hooks;  // retain_grad(): run after the hooks
};

/// Sinks a leaf's gradient into its grad(), after its hooks.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf);
  std::string name() const override { return "AccumulateGrad"; }
  TensorList apply(const TensorList& grad_outputs) override;
  const std::shared_ptr<TensorImpl>& leaf() const { return leaf_; }

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

/// A node whose backward is a function (views, transfers, composite backward helpers).
class FunctionNode final : public Node {
 public:
  using Backward = std::function<TensorList(const TensorList& grad_outputs)>;
  FunctionNode(std::string name, Backward backward) : name_(std::move(name)), backward_(std::move(backward)) {}
  std::string name() const override { return name_; }
  TensorList apply(const TensorList& grad_outputs) override;
  void release() override;

 private:
  std::string name_;
  Backward backward_;
  bool released_ = false;
};

/// A tensor an op's backward needs, with the version it had when saved: changing it in place
/// before backward is an error, as in PyTorch.
struct SavedTensor {
  Tensor tensor;  // inputs: the tensor itself; outputs: a detached alias (no cycle via grad_fn)
  uint64_t version = 0;
  bool is_output = false;
  bool requires_grad = false;
};

/// The node of an Op run through apply(): backward is Op::backward.
class OpNode final : public Node {
 public:
  OpNode(std::shared_ptr<Op> op, const TensorList& inputs, const TensorList& outputs, bool save_outputs);
  std::string name() const override;
  TensorList apply(const TensorList& grad_outputs) override;
  void release() override;

 private:
  Tensor unpack(const SavedTensor& s, size_t index, const char* what);
  std::shared_ptr<Op> op_;
  std::vector<SavedTensor> inputs_, outputs_;
  std::vector<OutputInfo> input_info_;  // shape, dtype, device of each input (saved or not)
  bool released_ = false;
};

namespace autograd {

/// The edge a gradient for `t` flows into: its grad_fn's output, a leaf's accumulator, or none.
Edge gradient_edge(const Tensor& t);
/// Makes `outputs` (those of floating-point dtype) the outputs of `node`, whose inputs are
/// `inputs`. Call only when some input requires grad and grad mode is on.
void set_history(const std::shared_ptr<Node>& node, const TensorList& inputs, const TensorList& outputs);
/// True when grad mode is on and some input requires grad.
bool any_requires_grad(const TensorList& inputs);
/// Records `backward` as the node of outputs computed from inputs (no-op when not needed).
void record_function(const char* name, const TensorList& inputs, const TensorList& outputs,
                     FunctionNode::Backward backward);

}  // namespace autograd
}  // namespace ember
