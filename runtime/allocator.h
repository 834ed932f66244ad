// Device memory allocation. Each device type has one Allocator; CUDA registers its own
// stream-ordered allocator when the CUDA backend is built.
#pragma once

#include <cstddef>
#include <memory>

#include "runtime/device.h"

namespace ember {

class Allocator {
 public:
  virtual ~Allocator() = default;
  /// Returns memory owned by the shared_ptr (its deleter frees it); throws OutOfMemory.
  virtual std::shared_ptr<void> allocate(size_t nbytes, Device device) = 0;
};

/// The allocator for a device; throws Unsupported for CUDA in a build without CUDA.
Allocator& allocator_for(Device device);

/// Returns the host memory ember keeps for reuse to the system.
void cpu_empty_cache();
/// Bytes of host memory ember keeps for reuse (large blocks released by tensors).
size_t cpu_cached_bytes();

/// Host memory held by tensors: the bytes they asked for (before the allocator's rounding), as
/// cuda::memory_stats counts a device's.
struct HostMemoryStats {
  size_t allocated = 0;       // bytes held by live tensors
  size_t peak_allocated = 0;  // since the last reset
  size_t cached = 0;          // bytes kept for reuse (cpu_cached_bytes)
};
HostMemoryStats cpu_memory_stats();
/// Starts a new peak from what is allocated now.
void cpu_reset_peak_memory_stats();

/// Alignment of every CPU allocation: a cache line, enough for any SIMD load.
inline constexpr size_t kCpuAlignment = 64;

}  // namespace ember
