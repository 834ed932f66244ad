#include "runtime/storage.h"

#include "runtime/allocator.h"
#include "runtime/memory_plan.h"

namespace ember {

Storage allocate_storage(size_t nbytes, Device device) {
  // A planned run (runtime/memory_plan.h) serves its own allocations; everything else, and
  // whatever the plan does not take, comes from the device's allocator.
  std::shared_ptr<void> mem = MemoryPlan::allocate_planned(nbytes, device);
  if (!mem) mem = allocator_for(device).allocate(nbytes, device);
  void* data = mem.get();
  return std::make_shared<StorageImpl>(data, nbytes, device, std::move(mem));
}

Storage wrap_storage(void* data, size_t nbytes, Device device, std::shared_ptr<void> keep_alive) {
  return std::make_shared<StorageImpl>(data, nbytes, device, std::move(keep_alive));
}

}  // namespace ember
