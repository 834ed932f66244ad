// A training step captured as one CUDA graph: forward, loss, backward and the optimizer's
// update, replayed with one launch while the batch's shapes stay the same (docs/TRAINING.md).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "nn/optim.h"
#include "runtime/tensor.h"

namespace ember::nn {

struct GraphStepOptions {
  /// false: every step runs eagerly (the same results; for comparisons and debugging).
  bool cuda_graphs = true;
  /// Eager steps of each input signature before it is captured (at least 1: the optimizer's
  /// state and the gradients must exist, and cuBLAS and cuDNN choose their algorithms there).
  int warmup_steps = 2;
  /// Input signatures (dtypes and sizes) whose graphs are kept; past that the oldest is dropped.
  size_t max_graphs = 4;
};

struct GraphStepStats {
  int64_t eager_steps = 0, replays = 0, captures = 0;
  /// Why the last capture failed or was not tried (empty if none failed): e.g. a random op
  /// (dropout), a host synchronisation, parameters off CUDA, an optimizer without a fused update.
  std::string capture_failure;
};

/// Runs training steps `zero_grad; loss = loss_fn(inputs); loss.backward(); optimizer.step()`
/// and returns each step's loss (detached). On CUDA, after `warmup_steps` eager steps of an
/// input signature, the step is captured as a CUDA graph and later steps of that signature
/// replay it: the batch is copied into the graph's input buffers, and the optimizer's per-step
/// values (learning rate, step counts) are refreshed on the host before each launch, so
/// schedules and checkpoints work as in eager training. Gradients are zeroed and refilled in
/// place instead of freed, and stay readable in `grad()` after each step.
///
/// A step that cannot be captured runs eagerly from then on for its signature, with the reason
/// in stats(): random numbers drawn in it (dropout: a replay would repeat them), host
/// synchronisation (`item()`, gradient clipping by norm), a loss that is not one number,
/// parameters not all float32 on one CUDA device (the fused update), or batches on the host
/// (copy them to the GPU first). Each replay waits for the previous one to finish before
/// rewriting its arguments.
class GraphStep {
 public:
  using LossFn = std::function<Tensor(const TensorList&)>;
  GraphStep(Optimizer& optimizer, LossFn loss_fn, GraphStepOptions options = {});
  ~GraphStep();
  GraphStep(const GraphStep&) = delete;
  GraphStep& operator=(const GraphStep&) = delete;

  /// One training step on `inputs` (the batch: whatever loss_fn takes); returns the loss.
  Tensor step(const TensorList& inputs);
  const GraphStepStats& stats() const { return stats_; }

 private:
  struct Captured;
  struct Signature {
    int64_t eager_steps = 0;
    bool uncapturable = false;
    std::unique_ptr<Captured> captured;
    int64_t order = 0;  // when it was captured, for dropping the oldest
    Shape loss_shape;   // the eager steps' loss
    DType loss_dtype = kFloat32;
  };
  Tensor eager_step(const TensorList& inputs);
  Tensor capture_and_run(Signature& s, const TensorList& inputs);
  /// The loss, or nullopt when the optimizer's update no longer matches the captured one.
  std::optional<Tensor> replay(Captured& c, const TensorList& inputs);

  Optimizer& optimizer_;
  LossFn loss_fn_;
  GraphStepOptions options_;
  GraphStepStats stats_;
  std::map<std::string, Signature> signatures_;
  int64_t captures_made_ = 0;
};

}  // namespace ember::nn
