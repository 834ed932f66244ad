#include "ops/op.h"

#include "autograd/grad_mode.h"
#include "autograd/meta.h"
#include "autograd/node.h"
#include "ops/copy.h"
#include "runtime/cuda/cuda.h"
#include "runtime/cuda_hooks.h"
#include "runtime/error.h"

namespace ember {

Device common_device(const TensorList& inputs, const char* op) {
  std::optional<Device> device;
  for (const Tensor& t : inputs) {
    if (!t.defined() || (t.is_cpu() && t.dim() == 0)) continue;
    if (!device) {
      device = t.device();
    } else {
      EMBER_CHECK(*device == t.device(), DeviceMismatch, "[", op,
                  "] expected all tensors on the same device, got ", *device, " and ", t.device());
    }
  }
  return device ? *device : Device::cpu();
}

namespace {

void run_forward(Op& op, Device device, TensorList& inputs, const TensorList& outputs) {
  // Kernels may call ops themselves (copies, casts); those are not part of the graph.
  NoGradGuard no_grad;
  if (device.is_cpu()) {
    op.forward_cpu(inputs, outputs);
    return;
  }
  // 0-d CPU tensors (scalars) follow the other operands onto the GPU, unless the kernel reads
  // them on the host.
  if (!op.reads_cpu_scalars())
    for (Tensor& t : inputs)
      if (t.defined() && t.is_cpu()) t = t.to(device);
  // Every kernel, library handle and stream lookup below is for `device`: make it current
  // here once, so no op can run against another device's context on cuda:N.
  cuda::DeviceGuard guard(device.index);
  op.forward_cuda(inputs, outputs);
}

}  // namespace

TensorList apply(const std::shared_ptr<Op>& op, TensorList inputs,
                 const std::vector<OutputSpec>& specs, std::optional<Device> device) {
  Device d = device ? *device : common_device(inputs, op->name());
  if (d.is_cuda()) check_cuda_device(d, op->name());
  TensorList outputs;
  outputs.reserve(specs.size());
  for (const OutputSpec& s : specs) outputs.push_back(empty_tensor(s.shape, s.dtype, d, op->name()));
  const bool record = autograd::any_requires_grad(inputs);
  TensorList saved = record ? inputs : TensorList{};  // run_forward may replace CPU scalars
  run_forward(*op, d, inputs, outputs);
  if (record) record_op(op, saved, outputs);
  return outputs;
}

TensorList Op::backward(const BackwardContext&) const {
  throw_error(ErrorCode::Unsupported, str_cat("[", name(), "] backward is not implemented yet"));
}

void record_op(const std::shared_ptr<Op>& op, const TensorList& inputs, const TensorList& outputs) {
  bool float_output = false;
  for (const Tensor& t : outputs) float_output = float_output || is_floating(t.dtype());
  if (!float_output) return;  // comparisons, argmax, predicates: no gradient flows
  auto node = std::make_shared<OpNode>(op, inputs, outputs, op->differentiable() && op->saves_outputs());
  autograd::set_history(node, inputs, outputs);
}

Tensor apply1(const std::shared_ptr<Op>& op, TensorList inputs, const OutputSpec& spec,
              std::optional<Device> device) {
  return apply(op, std::move(inputs), {spec}, device)[0];
}

namespace {

// An in-place op under autograd: the result is computed out of place from a recorded clone of
// any input aliasing the output (so the op never saves the tensor being overwritten), then
// written back with rebase_history.
void apply_into_recorded(const std::shared_ptr<Op>& op, const TensorList& inputs, const TensorList& outputs,
                         Device device) {
  EMBER_CHECK(outputs.size() == 1, Unsupported, "[", op->name(),
              "] in-place forms with several outputs are not recorded by autograd");
  const Tensor& out = outputs[0];
  check_rebase_allowed(out, op->name());
  // The op is rerun out of place into a fresh tensor: only ops that compute every element (from
  // inputs that include the written tensor, or from none, like fill_) can be recorded this way.
  // Ops that write some elements only (scatter_) are refused rather than leave garbage.
  bool reads_out = inputs.empty();
  for (const Tensor& t : inputs) reads_out = reads_out || (t.defined() && t.shares_storage(out));
  EMBER_CHECK(reads_out, Unsupported, "[", op->name(),
              "] this in-place op is not recorded by autograd; use its out-of-place form");
  TensorList recorded_inputs;
  recorded_inputs.reserve(inputs.size());
  for (const Tensor& t : inputs)
    recorded_inputs.push_back(t.defined() && t.shares_storage(out) ? t.clone() : t);
  rebase_history(out, apply(op, recorded_inputs, {{out.sizes(), out.dtype()}}, device)[0], op->name());
}

}  // namespace

void check_rebase_allowed(const Tensor& out, const char* op) {
  EMBER_CHECK(is_floating(out.dtype()), InvalidArgument, "[", op, "] an in-place result of dtype ", out.dtype(),
              " cannot take part in autograd (only floating tensors have gradients)");
  EMBER_CHECK(!(out.requires_grad() && out.is_leaf()), InvalidArgument, "[", op,
              "] a leaf tensor that requires grad is being used in an in-place operation; update it under "
              "NoGradGuard (as optimizers do) or use the out-of-place form");
  // A view shares its storage with another tensor whose history would also have to change
  // (PyTorch's view rebase); ember does not do that, so it refuses rather than lose a gradient.
  EMBER_CHECK(out.storage().use_count() == 1, Unsupported, "[", op,
              "] in-place operations under autograd are not supported on views or on tensors sharing storage "
              "with another tensor; use the out-of-place form");
}

void rebase_history(const Tensor& out, const Tensor& result, const char* op) {
  check_rebase_allowed(out, op);
  {
    NoGradGuard no_grad;
    copy_(out, result);  // bumps out's version: nodes that saved the old value refuse at backward
  }
  AutogradMeta& m = autograd::meta_of(out);
  const AutogradMeta* r = autograd::find_meta(result);
  // A result that depends on nothing requiring grad (fill_, zero_) leaves `out` a constant: no
  // gradient flows back through it, as none would through PyTorch's ZeroBackward.
  m.requires_grad = r && r->requires_grad;
  m.grad_fn = r ? r->grad_fn : nullptr;
  m.output_nr = r ? r->output_nr : 0;
}

void apply_into(const std::shared_ptr<Op>& op, TensorList inputs, const TensorList& outputs) {
  TensorList all = inputs;
  all.insert(all.end(), outputs.begin(), outputs.end());
  Device d = common_device(all, op->name());
  for (const Tensor& out : outputs) {
    EMBER_CHECK(out.device() == d, DeviceMismatch, "[", op->name(), "] output is on ", out.device(),
                " but the inputs are on ", d);
    check_no_internal_overlap(out, op->name());
  }
  if (d.is_cuda()) check_cuda_device(d, op->name());
  if (autograd::any_requires_grad(all)) {
    apply_into_recorded(op, inputs, outputs, d);
    return;
  }
  run_forward(*op, d, inputs, outputs);
  for (const Tensor& out : outputs) out.bump_version();
}

namespace {

enum class Category { Bool, Integral, Floating };

Category category_of(DType t) {
  return t == kBool ? Category::Bool : is_integral(t) ? Category::Integral : Category::Floating;
}

// PyTorch's combine_categories: the higher-priority result wins unless the lower-priority one
// is of a higher category.
std::optional<DType> combine(std::optional<DType> higher, std::optional<DType> lower) {
  if (!higher) return lower;
  if (!lower) return higher;
  if (category_of(*higher) == Category::Floating) return higher;
  if (*higher == kBool || category_of(*lower) == Category::Floating) return promote_types(*higher, *lower);
  return higher;
}

void update(std::optional<DType>& state, DType t) { state = state ? promote_types(*state, t) : t; }

}  // namespace

DType result_type(const TensorList& operands) {
  std::optional<DType> dim_result, zero_result, wrapped_result;
  for (const Tensor& t : operands) {
    if (!t.defined()) continue;
    if (t.is_wrapped_number()) {
      // A Python float counts as the default float dtype, not float64.
      update(wrapped_result, is_floating(t.dtype()) ? kDefaultFloat : t.dtype());
    } else if (t.dim() == 0) {
      update(zero_result, t.dtype());
    } else {
      update(dim_result, t.dtype());
    }
  }
  std::optional<DType> r = combine(dim_result, combine(zero_result, wrapped_result));
  return r ? *r : kDefaultFloat;
}

void check_no_internal_overlap(const Tensor& out, const char* op) {
  for (int64_t d = 0; d < out.dim(); ++d)
    EMBER_CHECK(out.sizes()[d] <= 1 || out.strides()[d] != 0, InvalidArgument, "[", op,
                "] cannot write in place into a tensor whose elements overlap (an expanded "
                "tensor); call contiguous() first");
}

}  // namespace ember
