// Fused multi-tensor optimizer steps on CUDA: one kernel launch updates up to 48 float32
// tensors (parameters, gradients and state together), instead of several element-wise ops
// per parameter. Used by SGD, Adam/AdamW and RMSprop when every parameter is a contiguous float32
// tensor on one CUDA device; otherwise they run as ordinary ops (on the parameters' device).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/tensor.h"

namespace ember::nn::fused {

/// True when the fused kernels apply: a CUDA build, and every defined gradient's parameter a
/// contiguous float32 tensor on the same CUDA device, gradients contiguous too.
bool applies(const std::vector<Tensor>& params);

struct AdamConfig {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled_weight_decay, amsgrad;
};
/// One Adam/AdamW step over parallel lists; steps[i] is tensor i's step count (already
/// incremented). max_exp_avg_sq is read only with amsgrad.
void adam_step(const TensorList& params, const TensorList& grads, const TensorList& exp_avg,
               const TensorList& exp_avg_sq, const TensorList& max_exp_avg_sq, const std::vector<int64_t>& steps,
               const AdamConfig& config);

struct RMSpropConfig {
  double lr, alpha, eps, weight_decay, momentum;
  bool centered;
};
/// One RMSprop step; grad_avg is read with centered, buffers with momentum.
void rmsprop_step(const TensorList& params, const TensorList& grads, const TensorList& square_avg,
                  const TensorList& grad_avg, const TensorList& buffers, const RMSpropConfig& config);

struct SGDConfig {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
};
/// One SGD step; with momentum, buffers[i] is updated (first[i]: it starts as the gradient).
void sgd_step(const TensorList& params, const TensorList& grads, const TensorList& buffers,
              const std::vector<bool>& first, const SGDConfig& config);

/// The fused steps' per-step arguments (tensor pointers, learning rate, bias corrections) for a
/// training step captured as a CUDA graph (nn::GraphStep). While a Scope in Capture mode is
/// current on a thread, each fused launch writes its arguments into the next host slot and is
/// captured as a kernel reading them from device memory this object owns; in Refresh mode a
/// step launches nothing and only rewrites the host slots. upload() then queues their copy to
/// the device on the current stream, before the graph's launch: a replay runs with that step's
/// values (a learning rate a schedule changed, Adam's bias corrections for the new step count).
/// The host slots are two pinned buffers used in turn, so the host can prepare a step while the
/// previous one runs.
class GraphedArgs {
 public:
  enum class Mode { Capture, Refresh };
  static constexpr size_t kSlotBytes = 4096;  // CUDA's limit on kernel arguments

  /// Room for `launches` fused launches (one per 48 tensors per step) on CUDA device `device`.
  GraphedArgs(size_t launches, int device);
  ~GraphedArgs();
  GraphedArgs(const GraphedArgs&) = delete;
  GraphedArgs& operator=(const GraphedArgs&) = delete;

  /// Makes `args` current on this thread for the scope's lifetime. Refresh first waits until the
  /// host buffer it writes has been copied to the device by the upload() before last.
  class Scope {
   public:
    Scope(GraphedArgs& args, Mode mode);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    GraphedArgs* previous_;
  };

  /// The object a Scope made current on this thread, or nullptr.
  static GraphedArgs* current();
  Mode mode() const { return mode_; }
  /// The host bytes for the next launch's `bytes` of arguments over `total` elements: a new slot
  /// when capturing; when refreshing, the slot captured in the same position, which must have
  /// been captured with the same size and total (else an Internal error: the step differs).
  void* next(size_t bytes, int64_t total);
  /// Where the kernel of the slot next() returned last reads its arguments (device memory).
  const void* device_slot() const;
  /// Queues the copy of the host slots to the device on the device's current stream.
  void upload();
  /// Launches seen in the current (or last) scope, and slots captured.
  size_t seen() const { return next_; }
  size_t captured() const { return slots_.size(); }

 private:
  struct Slot {
    size_t bytes;
    int64_t total;
  };
  struct Impl;
  std::unique_ptr<Impl> impl_;  // the buffers and events
  size_t capacity_;
  std::vector<Slot> slots_;
  size_t next_ = 0;
  Mode mode_ = Mode::Capture;
};

}  // namespace ember::nn::fused
