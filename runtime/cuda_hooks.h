// The runtime's door to the CUDA backend. Code that is not CUDA-specific calls these hooks;
// a CUDA build links runtime/cuda/hooks.cpp, a build without CUDA links runtime/no_cuda.cpp,
// whose hooks throw Unsupported. No #ifdef in the callers.
#pragma once

#include <cstddef>
#include <memory>

#include "runtime/device.h"
#include "runtime/storage.h"

namespace ember {

class Allocator;

class CudaHooks {
 public:
  virtual ~CudaHooks() = default;
  /// True when this build contains the CUDA backend.
  virtual bool is_built() const = 0;
  /// Number of visible CUDA devices (0 when no driver or no GPU).
  virtual int device_count() const = 0;
  /// The stream-ordered allocator of a CUDA device.
  virtual Allocator& allocator(Device device) const = 0;
  /// Copies `nbytes` contiguous bytes between any two devices (at least one CUDA) on ember's
  /// current stream; blocks until done unless `non_blocking`. `keep_alive` (the host memory
  /// involved) is held until an asynchronous copy has finished.
  virtual void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes,
                          bool non_blocking, std::shared_ptr<void> keep_alive = nullptr) const = 0;
  /// Page-locked host memory of `nbytes` (for asynchronous device-to-host copies).
  virtual Storage pinned_storage(size_t nbytes) const = 0;
  /// Waits for all work ember queued on the device.
  virtual void synchronize(Device device) const = 0;
};

/// The hooks of this build.
const CudaHooks& cuda_hooks();

/// Throws a clear error unless `device` is a usable CUDA device of this build.
void check_cuda_device(Device device, const char* op);

}  // namespace ember
