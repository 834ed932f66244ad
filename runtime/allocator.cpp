#include "runtime/allocator.h"

#include <cstdlib>

#include "runtime/cuda_hooks.h"
#include "runtime/error.h"

namespace ember {
namespace {

class CpuAllocator final : public Allocator {
 public:
  std::shared_ptr<void> allocate(size_t nbytes, Device) override {
    if (nbytes == 0) return {};
    size_t rounded = (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
    void* p = std::aligned_alloc(kCpuAlignment, rounded);
    EMBER_CHECK(p != nullptr, OutOfMemory, "[cpu allocator] failed to allocate ", nbytes,
                " bytes of host memory");
    return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  }
};

}  // namespace

Allocator& allocator_for(Device device) {
  static CpuAllocator cpu;
  if (device.is_cpu()) return cpu;
  return cuda_hooks().allocator(device);
}

}  // namespace ember
