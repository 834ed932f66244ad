// Hooks of a build without CUDA: every CUDA request is a clear Unsupported error.
#include <atomic>

#include "runtime/allocator.h"
#include "runtime/cuda/cuda.h"
#include "runtime/cuda_hooks.h"
#include "runtime/error.h"

namespace ember {

[[noreturn]] static void no_cuda(const char* what) {
  throw_error(ErrorCode::Unsupported,
              str_cat("[", what, "] ember was built without CUDA (rebuild with -Dcuda=enabled)"));
}

namespace {

class NoCudaHooks final : public CudaHooks {
 public:
  bool is_built() const override { return false; }
  int device_count() const override { return 0; }
  Allocator& allocator(Device) const override { no_cuda("allocate"); }
  void copy_bytes(void*, Device, const void*, Device, size_t, bool, std::shared_ptr<void>) const override {
    no_cuda("copy");
  }
  Storage pinned_storage(size_t) const override { no_cuda("pin_memory"); }
  void synchronize(Device) const override { no_cuda("synchronize"); }
};

}  // namespace

const CudaHooks& cuda_hooks() {
  static NoCudaHooks hooks;
  return hooks;
}

void check_cuda_device(Device, const char* op) { no_cuda(op); }

}  // namespace ember

// ---- the public CUDA API without CUDA --------------------------------------------------------

namespace ember::cuda {

namespace {
std::atomic<bool> g_allow_tf32{false};
}

int device_count() { return 0; }
DeviceProperties properties(int) { no_cuda("properties"); }
void synchronize(int) { no_cuda("synchronize"); }
DeviceGuard::DeviceGuard(int) : previous_(0) { no_cuda("device"); }
DeviceGuard::~DeviceGuard() = default;
Stream Stream::create(int) { no_cuda("stream"); }
Stream Stream::current(int) { no_cuda("stream"); }
Stream Stream::wrap(void*, int) { no_cuda("stream"); }
void Stream::synchronize() const { no_cuda("stream"); }
StreamGuard::StreamGuard(const Stream&) : device_(0) { no_cuda("stream"); }
StreamGuard::~StreamGuard() = default;
Event::Event(int, bool) : device_(0) { no_cuda("event"); }
void Event::record(const std::optional<Stream>&) { no_cuda("event"); }
void Event::wait(const Stream&) const { no_cuda("event"); }
void Event::synchronize() const { no_cuda("event"); }
Graph Graph::capture(int, const std::function<void()>&) { no_cuda("cuda graph"); }
void Graph::replay() const { no_cuda("cuda graph"); }
Graph::Copy Graph::capture_copy(int, void*, const void*, size_t) { no_cuda("cuda graph"); }
bool Graph::set_copy(Copy&, void*, const void*) const { no_cuda("cuda graph"); }
GraphMemoryStats graph_memory_stats(int) { no_cuda("cuda graph"); }
bool is_capturing(int) { return false; }
CaptureChecks::CaptureChecks(Tensor flag) : flag_(std::move(flag)), previous_(nullptr) {}
CaptureChecks::~CaptureChecks() = default;
CaptureChecks* CaptureChecks::current() { return nullptr; }
int32_t CaptureChecks::add(std::string what) {
  checks_.push_back(std::move(what));
  return static_cast<int32_t>(checks_.size());
}

float Event::elapsed_ms(const Event&, const Event&) { no_cuda("event"); }
MemoryStats memory_stats(int) { no_cuda("memory_stats"); }
void reset_peak_memory_stats(int) { no_cuda("memory_stats"); }
void empty_cache(int) { no_cuda("empty_cache"); }
void set_memory_cap(int, std::optional<size_t>) { no_cuda("set_memory_cap"); }
void set_allow_tf32(bool allow) { g_allow_tf32.store(allow); }
bool allow_tf32() { return g_allow_tf32.load(); }
void set_cudnn_benchmark(bool) {}
bool cudnn_benchmark() { return false; }
void set_cudnn_exact(bool) {}
bool cudnn_exact() { return false; }
void set_deterministic(bool) {}
bool deterministic() { return false; }
void set_gemm_epilogues(bool) {}
bool gemm_epilogues() { return false; }
void set_gemm_autotune(bool) {}
bool gemm_autotune() { return false; }
Tensor pin_memory(const Tensor&) { no_cuda("pin_memory"); }
Tensor empty_pinned(const Shape&, DType) { no_cuda("empty_pinned"); }
bool is_pinned(const Tensor&) { return false; }

}  // namespace ember::cuda
