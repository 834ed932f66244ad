// One op, defined once. An Op subclass holds the op's attributes and declares one forward per
// device; `apply` is the only device switch in ember.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "runtime/tensor.h"

namespace ember {

/// What an op's backward sees: its inputs, its outputs (when it saves them), the gradients of
/// its outputs (zeros where unused) and which inputs need a gradient.
struct BackwardContext {
  const TensorList& inputs;
  const TensorList& outputs;
  const TensorList& grads;
  const std::vector<bool>& needs_grad;
  bool needs_input_grad(size_t i) const { return i < needs_grad.size() && needs_grad[i]; }
};

class Op {
 public:
  virtual ~Op() = default;
  /// The op's registry name, e.g. "add".
  virtual const char* name() const = 0;
  /// Computes outputs (already allocated, on the CPU) from inputs.
  virtual void forward_cpu(const TensorList& inputs, const TensorList& outputs) = 0;
  /// Same on a CUDA device; builds without a kernel for the op throw Unsupported.
  virtual void forward_cuda(const TensorList& inputs, const TensorList& outputs) = 0;
  /// True when forward_cuda reads 0-d CPU inputs itself (element-wise kernels take them by
  /// value), so apply() need not copy them to the device first: a copy per scalar would cost
  /// a host-to-device transfer on every `x * 2.0`.
  virtual bool reads_cpu_scalars() const { return false; }

  /// True when backward() is implemented. Ops with only integer or bool outputs (comparisons,
  /// argmax) never take part in autograd.
  virtual bool differentiable() const { return false; }
  /// True when backward() reads ctx.outputs (e.g. exp, whose derivative is its output).
  virtual bool saves_outputs() const { return false; }
  /// False when backward() never reads ctx.inputs (copies, additions): the node then keeps no
  /// reference to them, so their memory is freed early and in-place writes to them stay legal.
  virtual bool saves_inputs() const { return true; }
  /// Gradients of the inputs (undefined where not needed), written with public ops only, so it
  /// runs on every device and is itself differentiable.
  virtual TensorList backward(const BackwardContext& ctx) const;
};

/// Shape and dtype of one output to allocate.
struct OutputSpec {
  Shape shape;
  DType dtype;
};

/// The device shared by the defined inputs; a 0-d CPU tensor may join tensors of any device,
/// as in PyTorch. Throws DeviceMismatch naming `op`.
Device common_device(const TensorList& inputs, const char* op);

/// Runs `op`: allocates outputs of `specs` on the inputs' device (or on `device` for ops
/// without inputs, e.g. factories) and calls that device's forward.
TensorList apply(const std::shared_ptr<Op>& op, TensorList inputs,
                 const std::vector<OutputSpec>& specs, std::optional<Device> device = std::nullopt);
/// `apply` for single-output ops.
Tensor apply1(const std::shared_ptr<Op>& op, TensorList inputs, const OutputSpec& spec,
              std::optional<Device> device = std::nullopt);
/// Makes `outputs` the outputs of an autograd node running op->backward (apply() calls it when
/// grad mode is on and an input requires grad).
void record_op(const std::shared_ptr<Op>& op, const TensorList& inputs, const TensorList& outputs);
/// Runs `op` writing into existing outputs (in-place forms); bumps their version counters.
void apply_into(const std::shared_ptr<Op>& op, TensorList inputs, const TensorList& outputs);

/// Autograd for in-place forms, as PyTorch does it: writes `result` (computed out of place and
/// recorded) into `out` and makes `out` refer to result's node. Refuses leaves that require grad,
/// non-floating tensors and tensors sharing storage (views) with a clear error naming `op`.
void rebase_history(const Tensor& out, const Tensor& result, const char* op);
/// The checks of rebase_history alone, for callers that must refuse before computing.
void check_rebase_allowed(const Tensor& out, const char* op);

/// PyTorch's torch.result_type: tensors with dims win over 0-d tensors, which win over
/// wrapped numbers (Scalars), except that a higher category (bool < integer < float) always
/// promotes.
DType result_type(const TensorList& operands);

/// Throws InvalidArgument naming `op` unless the output may be written in place: no element of
/// it is reachable by two indices (an expanded tensor).
void check_no_internal_overlap(const Tensor& out, const char* op);

}  // namespace ember

/// Declares an op class's two forwards (defined in ops/cpu/ and ops/cuda/ or ops/no_cuda.cpp).
#define EMBER_OP_FORWARDS                                                            \
  void forward_cpu(const TensorList& inputs, const TensorList& outputs) override; \
  void forward_cuda(const TensorList& inputs, const TensorList& outputs) override;

/// Declares an op's backward (defined in ops/*_backward.cpp).
#define EMBER_OP_BACKWARD                                   \
  bool differentiable() const override;                   \
  TensorList backward(const BackwardContext& ctx) const override;
