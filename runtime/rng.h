// Random-number generators. A Generator is a Philox key (the seed) plus an offset counting the
// 128-bit blocks already drawn; a draw of n elements reads blocks [offset, offset + k) and then
// advances the offset by k. Nothing else is state, so CPU and CUDA draws with the same seed
// and offset read the same blocks and give the same numbers.
#pragma once

#include <cstdint>
#include <mutex>

#include "runtime/device.h"

namespace ember {

class Generator {
 public:
  explicit Generator(uint64_t seed = kDefaultSeed) : seed_(seed) {}

  void manual_seed(uint64_t seed);
  uint64_t seed() const;
  uint64_t offset() const;
  void set_offset(uint64_t offset);
  /// Reserves `blocks` blocks for one draw; returns {seed, first block}. Thread-safe.
  std::pair<uint64_t, uint64_t> reserve(uint64_t blocks);

  static constexpr uint64_t kDefaultSeed = 67280421310721ull;  // PyTorch's default seed

 private:
  mutable std::mutex mutex_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

/// The default generator of a device (one for the CPU, one per CUDA device).
Generator& default_generator(Device device);

/// Seeds every default generator (CPU and all CUDA devices), like torch.manual_seed.
void manual_seed(uint64_t seed);

}  // namespace ember
