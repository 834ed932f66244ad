#include "runtime/allocator.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "runtime/cuda_hooks.h"
#include "runtime/error.h"

namespace ember {
namespace {

// Host memory. Blocks of 1 MiB and more are kept on free lists by size class when released
// and handed out again: large allocations otherwise come from fresh mmap'd pages, and touching
// those pages costs more than the arithmetic of a typical element-wise op (a training loop
// allocates the same sizes every step). Small blocks go straight to malloc, which already
// caches them.
class CpuAllocator final : public Allocator {
 public:
  std::shared_ptr<void> allocate(size_t nbytes, Device) override {
    if (nbytes == 0) return {};
    const size_t size = size_class(nbytes);
    void* p = nullptr;
    if (size >= kCacheMin) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= size;
      }
    }
    if (!p) p = std::aligned_alloc(kCpuAlignment, size);
    EMBER_CHECK(p != nullptr, OutOfMemory, "[cpu allocator] failed to allocate ", nbytes, " bytes of host memory");
    const size_t now = allocated_.fetch_add(nbytes, std::memory_order_relaxed) + nbytes;
    size_t peak = peak_.load(std::memory_order_relaxed);
    while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    return std::shared_ptr<void>(p, [this, size, nbytes](void* q) {
      allocated_.fetch_sub(nbytes, std::memory_order_relaxed);
      release(q, size);
    });
  }

  HostMemoryStats stats() {
    return {allocated_.load(std::memory_order_relaxed), peak_.load(std::memory_order_relaxed), cached_bytes()};
  }
  void reset_peak() { peak_.store(allocated_.load(std::memory_order_relaxed), std::memory_order_relaxed); }

  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    cached_bytes_ = 0;
  }

  size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_bytes_;
  }

  ~CpuAllocator() override { empty_cache(); }

 private:
  static constexpr size_t kCacheMin = size_t{1} << 20;
  static constexpr size_t kCacheMax = size_t{1} << 30;  // bytes kept on the free lists at most

  // Rounds up to the alignment, and large sizes to an eighth of their power of two, so that
  // nearby sizes share a free list while wasting at most 12.5%.
  static size_t size_class(size_t n) {
    size_t aligned = (n + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
    if (aligned < kCacheMin) return aligned;
    size_t pow2 = size_t{1} << (63 - __builtin_clzll(aligned));
    size_t step = pow2 / 8;
    return (aligned + step - 1) / step * step;
  }

  void release(void* p, size_t size) {
    if (size >= kCacheMin) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_bytes_ + size <= kCacheMax) {
        free_[size].push_back(p);
        cached_bytes_ += size;
        return;
      }
    }
    std::free(p);
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_bytes_ = 0;
  std::atomic<size_t> allocated_{0}, peak_{0};  // what tensors asked for, not the size classes
};

CpuAllocator& cpu_allocator() {
  // Never destroyed: tensors held by static objects may be freed after main returns.
  static CpuAllocator* a = new CpuAllocator;
  return *a;
}

}  // namespace

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) return cpu_allocator();
  return cuda_hooks().allocator(device);
}

void cpu_empty_cache() { cpu_allocator().empty_cache(); }
size_t cpu_cached_bytes() { return cpu_allocator().cached_bytes(); }
HostMemoryStats cpu_memory_stats() { return cpu_allocator().stats(); }
void cpu_reset_peak_memory_stats() { cpu_allocator().reset_peak(); }

}  // namespace ember
