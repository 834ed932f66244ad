// Hooks of a build without CUDA: every CUDA request is a clear Unsupported error.
#include "runtime/allocator.h"
#include "runtime/cuda_hooks.h"
#include "runtime/error.h"

namespace ember {
namespace {

[[noreturn]] void no_cuda(const char* what) {
  throw_error(ErrorCode::Unsupported,
              str_cat("[", what, "] ember was built without CUDA (rebuild with -Dcuda=enabled)"));
}

class NoCudaHooks final : public CudaHooks {
 public:
  bool is_built() const override { return false; }
  int device_count() const override { return 0; }
  Allocator& allocator(Device) const override { no_cuda("allocate"); }
  void copy_bytes(void*, Device, const void*, Device, size_t, bool) const override { no_cuda("copy"); }
  void synchronize(Device) const override { no_cuda("synchronize"); }
};

}  // namespace

const CudaHooks& cuda_hooks() {
  static NoCudaHooks hooks;
  return hooks;
}

void check_cuda_device(Device, const char* op) { no_cuda(op); }

}  // namespace ember
