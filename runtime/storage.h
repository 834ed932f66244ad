// A block of memory on one device that tensors view. It either owns its memory (from the
// device's allocator) or wraps external memory kept alive by a handle (e.g. a mmapped file).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/device.h"

namespace ember {

class StorageImpl {
 public:
  StorageImpl(void* data, size_t nbytes, Device device, std::shared_ptr<void> owner)
      : data_(data), nbytes_(nbytes), device_(device), owner_(std::move(owner)) {}

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

  /// Bumped by every in-place write; autograd compares it with the value it saved.
  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void* data_;
  size_t nbytes_;
  Device device_;
  std::shared_ptr<void> owner_;  // frees or keeps alive the memory
  std::atomic<uint64_t> version_{0};
};

using Storage = std::shared_ptr<StorageImpl>;

/// New memory of `nbytes` on `device`, uninitialised.
Storage allocate_storage(size_t nbytes, Device device);
/// Wraps memory ember does not own; `keep_alive` holds it valid for the storage's lifetime.
Storage wrap_storage(void* data, size_t nbytes, Device device, std::shared_ptr<void> keep_alive);

}  // namespace ember
