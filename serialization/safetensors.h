// Writing safetensors files (the Hugging Face format PyTorch users load with
// safetensors.torch.load_file): an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the tensors' bytes back to back.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "runtime/tensor.h"

namespace ember {

/// Writes `tensors` (in the given order; any device) to `path` atomically. `metadata` becomes
/// the header's "__metadata__" (string values, as the format requires).
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// The header JSON save_safetensors writes for `tensors` (without padding), for tests and tools.
std::string safetensors_header(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata = {});

}  // namespace ember
