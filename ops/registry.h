// The registry of every op: name, devices, backward, dtypes. `ember ops --json`, the model
// loader's name table and docs/OPS.md all read it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/dtype.h"

namespace ember {

struct OpInfo {
  std::string name;
  std::string family;       // "unary", "reduction", ...
  std::vector<DType> dtypes;  // dtypes the op accepts
  bool cpu = true;
  bool cuda = false;        // has a CUDA kernel in this build
  bool backward = false;    // differentiable through autograd
};

/// What an op family declares for one op.
struct OpSupport {
  bool cpu = true;
  bool cuda_kernel = false;  // a CUDA kernel exists (reported only in CUDA builds)
  bool backward = false;
};

class OpRegistry {
 public:
  /// The registry, filled on first use.
  static const OpRegistry& get();

  const std::vector<OpInfo>& ops() const { return ops_; }
  /// The op of that name, or nullptr.
  const OpInfo* find(const std::string& name) const;

  /// Declares one op (called by the families' register functions).
  void add(const std::string& family, const std::string& name, uint32_t dtype_set, OpSupport support = {});

 private:
  std::vector<OpInfo> ops_;
};

/// The registry as a JSON array: [{"name": ..., "cpu": ..., "cuda": ..., "backward": ...,
/// "dtypes": [...]}, ...].
std::string registry_json(const OpRegistry& registry);

}  // namespace ember
