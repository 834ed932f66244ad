#include "autograd/node.h"

#include <atomic>

#include "autograd/grad_mode.h"
#include "autograd/meta.h"
#include "ops/binary.h"
#include "ops/creation.h"
#include "ops/op.h"
#include "runtime/error.h"

namespace ember {

namespace {
std::atomic<uint64_t> g_next_sequence_nr{0};

[[noreturn]] void freed_error(const std::string& node) {
  throw_error(ErrorCode::InvalidArgument,
              str_cat("[backward] trying to backward through ", node,
                      " a second time: its saved tensors were freed by the first backward; pass "
                      "retain_graph=true to the first backward to keep them"));
}
}  // namespace

Node::Node() : sequence_nr(g_next_sequence_nr.fetch_add(1)) {}

// ---- AccumulateGrad --------------------------------------------------------------------------

AccumulateGrad::AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {
  outputs.push_back({leaf_->sizes, leaf_->dtype, leaf_->storage->device()});
}

TensorList AccumulateGrad::apply(const TensorList& grad_outputs) {
  Tensor leaf(leaf_);
  AutogradMeta& m = autograd::meta_of(leaf);
  Tensor g = grad_outputs[0];
  for (const GradHook& hook : m.hooks) {
    Tensor r = hook(g);
    if (r.defined()) g = r;
  }
  // The graph's gradient tensors may be shared (a user's grad_output, one gradient reaching
  // two leaves), so grad() starts as a copy and later sums make new tensors; with
  // create_graph the sum stays in the graph for higher-order gradients.
  if (!m.grad.defined()) {
    // The gradient can be kept as it is when nothing else holds it or its memory (the
    // engine's buffer is the only owner), else it is copied.
    const bool sole_owner = g.is_same(grad_outputs[0]) && grad_outputs[0].impl_ptr().use_count() == 2 &&
                            g.storage().use_count() == 1;
    // A contiguous leaf gets a contiguous gradient (PyTorch's layout contract): a transposed
    // or expanded one (a matrix product's, a broadcast's) is copied once here, so that the
    // optimizers' fused kernels, which take contiguous tensors, apply.
    const bool relaid = leaf.is_contiguous() && !g.is_contiguous();
    if (relaid) g = g.contiguous();
    m.grad = grad_enabled() ? g : sole_owner || relaid ? g : g.detach().clone();
  } else if (!grad_enabled() && m.grad.impl_ptr().use_count() == 1 && m.grad.storage().use_count() == 1 &&
             m.grad.dtype() == g.dtype() && m.grad.sizes() == g.sizes() && !m.grad.requires_grad()) {
    // Nothing but this leaf holds its gradient: summed in place, as PyTorch does. A gradient
    // then keeps its memory from step to step, which a captured training step relies on
    // (nn::GraphStep: its graph zeroes and refills the same tensors).
    add_(m.grad, g.detach());
  } else {
    m.grad = grad_enabled() ? add(m.grad, g) : add(m.grad, g.detach());
  }
  for (const auto& hook : m.post_accumulate_hooks) hook(leaf);
  return {};
}

// ---- FunctionNode ----------------------------------------------------------------------------

TensorList FunctionNode::apply(const TensorList& grad_outputs) {
  if (released_) freed_error(name_);
  return backward_(grad_outputs);
}

void FunctionNode::release() {
  released_ = true;
  backward_ = nullptr;
}

// ---- OpNode ----------------------------------------------------------------------------------

OpNode::OpNode(std::shared_ptr<Op> op, const TensorList& inputs, const TensorList& outputs, bool save_outputs)
    : op_(std::move(op)) {
  const bool save_inputs = op_->saves_inputs();
  for (const Tensor& t : inputs) {
    SavedTensor s;
    input_info_.push_back(t.defined() ? OutputInfo{t.sizes(), t.dtype(), t.device()} : OutputInfo{});
    if (t.defined() && save_inputs) {
      s.tensor = t;
      s.version = t.version();
      s.requires_grad = t.requires_grad();
    }
    inputs_.push_back(std::move(s));
  }
  if (save_outputs) {
    for (const Tensor& t : outputs) {
      SavedTensor s;
      s.tensor = t.detach();
      s.version = t.version();
      s.is_output = true;
      outputs_.push_back(std::move(s));
    }
  }
}

std::string OpNode::name() const { return str_cat(op_->name(), "Backward"); }

Tensor OpNode::unpack(const SavedTensor& s, size_t index, const char* what) {
  if (!s.tensor.defined()) return s.tensor;
  EMBER_CHECK(s.tensor.version() == s.version, InvalidArgument, "[backward] one of the tensors needed for gradient computation has been modified by an in-place operation: ",
              what, " ", index, " of ", op_->name(), " was saved at version ", s.version, " and is now at version ",
              s.tensor.version());
  if (!s.is_output) return s.tensor;
  // An output is saved without its grad_fn (that would be a cycle); it gets it back here, so a
  // backward that uses it stays differentiable.
  Tensor t = s.tensor.detach();
  if (grad_enabled() && is_floating(t.dtype())) {
    AutogradMeta& m = autograd::meta_of(t);
    m.requires_grad = true;
    m.grad_fn = shared_from_this();
    m.output_nr = static_cast<uint32_t>(index);
  }
  return t;
}

TensorList OpNode::apply(const TensorList& grad_outputs) {
  if (released_) freed_error(name());
  TensorList inputs, outputs, grads;
  std::vector<bool> needs;
  for (size_t i = 0; i < inputs_.size(); ++i) {
    inputs.push_back(unpack(inputs_[i], i, "input"));
    needs.push_back(next_edges[i].node != nullptr);
  }
  for (size_t i = 0; i < outputs_.size(); ++i) outputs.push_back(unpack(outputs_[i], i, "output"));
  for (size_t i = 0; i < grad_outputs.size(); ++i) {
    const Tensor& g = grad_outputs[i];
    grads.push_back(g.defined() ? g : zeros(this->outputs[i].shape, {this->outputs[i].dtype, this->outputs[i].device}));
  }
  BackwardContext ctx{inputs, outputs, grads, needs};
  TensorList result = op_->backward(ctx);
  result.resize(inputs_.size());
  for (size_t i = 0; i < result.size(); ++i) {
    if (!needs[i]) {
      result[i] = Tensor();
      continue;
    }
    if (!result[i].defined()) continue;
    const OutputInfo& in = input_info_[i];
    EMBER_ASSERT(result[i].sizes() == in.shape, str_cat(name(), " returned a gradient of shape ",
                                                        shape_str(result[i].sizes()), " for input ", i,
                                                        " of shape ", shape_str(in.shape)));
    if (result[i].dtype() != in.dtype) result[i] = result[i].to(in.dtype);
  }
  return result;
}

void OpNode::release() {
  released_ = true;
  inputs_.assign(inputs_.size(), SavedTensor{});
  outputs_.clear();
}

// ---- recording -------------------------------------------------------------------------------

namespace autograd {

AutogradMeta& meta_of(const Tensor& t) {
  auto& p = t.impl().autograd;
  if (!p) p = std::make_shared<AutogradMeta>();
  return *p;
}

Edge gradient_edge(const Tensor& t) {
  AutogradMeta* m = find_meta(t);
  if (!m || !m->requires_grad) return {};
  if (m->grad_fn) return {m->grad_fn, m->output_nr};
  std::shared_ptr<Node> acc = m->grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    m->grad_accumulator = acc;
  }
  return {acc, 0};
}

bool any_requires_grad(const TensorList& inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void set_history(const std::shared_ptr<Node>& node, const TensorList& inputs, const TensorList& outputs) {
  for (const Tensor& t : inputs) node->next_edges.push_back(t.defined() ? gradient_edge(t) : Edge{});
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& t = outputs[i];
    node->outputs.push_back({t.sizes(), t.dtype(), t.device()});
    if (!is_floating(t.dtype())) continue;
    AutogradMeta& m = meta_of(t);
    m.requires_grad = true;
    m.grad_fn = node;
    m.output_nr = static_cast<uint32_t>(i);
  }
}

void record_function(const char* name, const TensorList& inputs, const TensorList& outputs,
                     FunctionNode::Backward backward) {
  if (!any_requires_grad(inputs)) return;
  auto node = std::make_shared<FunctionNode>(std::string(name) + "Backward", std::move(backward));
  set_history(node, inputs, outputs);
}

}  // namespace autograd
}  // namespace ember
