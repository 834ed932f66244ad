// A model loaded from a .ember file: run it on any device, fine-tune it with ember's optimizers,
// save it back (as .ember, or as safetensors with PyTorch's state_dict names).
//
//   auto m = ember::load("m.ember", ember::Device::cuda());
//   ember::Tensor y = m.forward({x})[0];
//   ember::nn::Adam opt(m.parameters(), {...});
//   m.save("tuned.ember");
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "graph/executor.h"
#include "graph/graph.h"
#include "model/inference.h"
#include "runtime/tensor.h"

namespace ember {

struct LoadOptions {
  /// Parameters the file marks trainable require grad after loading (so a loaded model
  /// fine-tunes); off, every parameter is frozen.
  bool trainable = true;
};

class Model {
 public:
  /// Reads and verifies `path` (serialization/model_file.h) and places the weights on `device`:
  /// on the CPU they view the mapped file (copied on first write); on CUDA each is uploaded once.
  static Model load(const std::string& path, Device device = Device::cpu(), const LoadOptions& options = {});

  /// Runs the graph; inputs in the file's order, on the model's device. In evaluation mode with
  /// no gradient recorded (under NoGradGuard, or nothing requires grad) it takes the inference
  /// fast path (model/inference.h): an optimised copy of the graph, and CUDA graphs on CUDA.
  TensorList forward(const TensorList& inputs) const;

  /// Options of the inference fast path (dropping the current plan).
  void set_inference_options(const InferenceOptions& options);
  const InferenceOptions& inference_options() const { return inference_->options; }
  /// What the current plan did (empty before the first inference run).
  InferenceStats inference_stats() const;

  /// Parameters and buffers by their PyTorch state_dict names.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  /// The parameters that require grad, for an optimizer.
  std::vector<Tensor> parameters() const;

  /// Training mode turns dropout on; evaluation mode (the default after loading) off.
  void train(bool on = true) { training_ = on; }
  void eval() { training_ = false; }
  bool is_training() const { return training_; }

  /// Moves the weights to `device` (new tensors: optimizers must be made afterwards).
  void to(Device device);
  Device device() const { return device_; }

  /// Writes the model with its current weights as .ember, atomically.
  void save(const std::string& path) const;
  /// Writes parameters and buffers as safetensors with PyTorch's state_dict names, atomically.
  void save_safetensors(const std::string& path) const;

  const graph::Graph& graph() const { return *graph_; }
  uint64_t checksum() const { return checksum_; }
  int64_t parameter_count() const;
  int64_t parameter_bytes() const;

 private:
  std::shared_ptr<graph::Graph> graph_;  // shared: the executor refers to it
  std::shared_ptr<graph::Executor> executor_;
  std::vector<Tensor> stored_;           // per value id: parameter, buffer or constant
  struct InferenceState {
    std::mutex mutex;
    InferenceOptions options;
    std::shared_ptr<InferencePlan> plan;
  };
  // A model's copies share it until one moves or changes options.
  std::shared_ptr<InferenceState> inference_ = std::make_shared<InferenceState>();
  std::shared_ptr<InferencePlan> inference_plan() const;
  Device device_ = Device::cpu();
  bool training_ = false;
  uint64_t checksum_ = 0;
};

/// Model::load.
inline Model load(const std::string& path, Device device = Device::cpu(), const LoadOptions& options = {}) {
  return Model::load(path, device, options);
}

}  // namespace ember
