#include "runtime/storage.h"

#include "runtime/allocator.h"

namespace ember {

Storage allocate_storage(size_t nbytes, Device device) {
  std::shared_ptr<void> mem = allocator_for(device).allocate(nbytes, device);
  void* data = mem.get();
  return std::make_shared<StorageImpl>(data, nbytes, device, std::move(mem));
}

Storage wrap_storage(void* data, size_t nbytes, Device device, std::shared_ptr<void> keep_alive) {
  return std::make_shared<StorageImpl>(data, nbytes, device, std::move(keep_alive));
}

}  // namespace ember
