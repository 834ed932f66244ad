// `ember info`, `ember run` and `ember validate`: model files from the command line.
#pragma once

#include <string>
#include <vector>

#include "graph/graph.h"
#include "runtime/tensor.h"

namespace ember::tools {

/// Prints inputs and outputs (shapes, dtypes), the op histogram, parameter count and bytes,
/// producer, metadata and checksum status. Returns the process exit code.
int model_info(const std::string& path);
/// Verifies the file completely; prints "ok" or the error. Returns 0 when valid.
int model_validate(const std::string& path);
/// Runs the model on `device` with inputs from .npy files (random ones of the declared shapes,
/// symbolic dims set to `batch`, when none are given) and writes outputs as .npy (or prints a
/// summary of each when no output paths are given).
int model_run(const std::string& path, const std::vector<std::string>& inputs,
              const std::vector<std::string>& outputs, const std::string& device, int64_t batch);

/// Random inputs of the graph's declared shapes (symbolic dims set to `batch`), seeded: floats
/// from randn, integer inputs (token ids, indices) zero.
TensorList random_inputs(const graph::Graph& g, Device device, int64_t batch);

/// Fine-tunes the model in training mode on one batch (inputs .npy, int64 class targets .npy)
/// with SGD and cross-entropy for `steps` steps, printing each step's loss; writes the tuned
/// model to `output` when given. For comparing training against PyTorch from the same weights.
/// class_last: the output's last dim holds the classes (a language model's logits [B, T, vocab]
/// with next-token targets [B, T]); both are flattened to rows, as F.cross_entropy(
/// logits.view(-1, vocab), y.view(-1)). Otherwise PyTorch's convention: classes in dim 1.
int model_finetune(const std::string& path, const std::vector<std::string>& inputs, const std::string& target,
                   const std::string& device, int steps, double lr, double momentum, const std::string& output,
                   bool class_last = false);

}  // namespace ember::tools
