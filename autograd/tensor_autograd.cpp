// Tensor's autograd methods.
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/meta.h"
#include "autograd/node.h"
#include "ops/binary.h"
#include "runtime/error.h"

namespace ember {

bool Tensor::requires_grad() const {
  const AutogradMeta* m = autograd::find_meta(*this);
  return m && m->requires_grad;
}

const Tensor& Tensor::requires_grad_(bool on) const {
  AutogradMeta* m = autograd::find_meta(*this);
  EMBER_CHECK(!(m && m->grad_fn) || on, InvalidArgument,
              "[requires_grad_] can only change the flag of leaf tensors; use detach() for a non-leaf one");
  if (on)
    EMBER_CHECK(is_floating(dtype()), InvalidArgument,
                "[requires_grad_] only floating-point tensors can require gradients, got ", dtype());
  if (on || m) autograd::meta_of(*this).requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  const AutogradMeta* m = autograd::find_meta(*this);
  return m ? m->grad : Tensor();
}

void Tensor::set_grad(const Tensor& grad) const {
  if (grad.defined())
    EMBER_CHECK(grad.sizes() == sizes() && grad.dtype() == dtype() && grad.device() == device(), InvalidArgument,
                "[set_grad] expected a gradient of shape ", shape_str(sizes()), ", ", dtype(), " on ", device(),
                "; got ", shape_str(grad.sizes()), ", ", grad.dtype(), " on ", grad.device());
  autograd::meta_of(*this).grad = grad;
}

std::shared_ptr<Node> Tensor::grad_fn() const {
  const AutogradMeta* m = autograd::find_meta(*this);
  return m ? m->grad_fn : nullptr;
}

uint32_t Tensor::output_nr() const {
  const AutogradMeta* m = autograd::find_meta(*this);
  return m ? m->output_nr : 0;
}

bool Tensor::is_leaf() const { return grad_fn() == nullptr; }

Tensor Tensor::detach() const { return make_view(*this, sizes(), strides(), storage_offset()); }

void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  ember::backward({*this}, gradient.defined() ? TensorList{gradient} : TensorList{}, retain_graph, create_graph);
}

void Tensor::register_hook(GradHook hook) const {
  EMBER_CHECK(requires_grad(), InvalidArgument,
              "[register_hook] cannot register a hook on a tensor that does not require grad");
  AutogradMeta& m = autograd::meta_of(*this);
  if (m.grad_fn) m.grad_fn->output_hooks[m.output_nr].push_back(std::move(hook));
  else m.hooks.push_back(std::move(hook));
}

void Tensor::register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const {
  EMBER_CHECK(requires_grad() && is_leaf(), InvalidArgument,
              "[register_post_accumulate_grad_hook] expected a leaf tensor that requires grad");
  autograd::meta_of(*this).post_accumulate_hooks.push_back(std::move(hook));
}

void Tensor::retain_grad() const {
  EMBER_CHECK(requires_grad(), InvalidArgument, "[retain_grad] the tensor does not require grad");
  if (is_leaf()) return;
  // The hook holds the tensor's meta weakly: retaining must not keep the tensor alive.
  std::weak_ptr<AutogradMeta> weak = impl().autograd;
  const AutogradMeta& m = autograd::meta_of(*this);
  m.grad_fn->retain_hooks[m.output_nr].push_back([weak](const Tensor& g) {
    if (auto m = weak.lock()) m->grad = m->grad.defined() ? add(m->grad, g.detach()) : g.detach().clone();
    return Tensor();
  });
}

}  // namespace ember
